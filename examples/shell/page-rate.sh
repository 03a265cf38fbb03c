performer serve --data ./data --auth-secret "$SECRET" --page-bytes-per-second 8388608 --pages-per-second 64   # 8 MiB/s, 64 pages/s per caller
curl -si 'localhost:8080/v1/rooms/lobby/changes?after=0' | grep -i -e '^HTTP' -e retry-after   # far past it:
# HTTP/1.1 503 Service Unavailable
# Retry-After: 2
curl -s localhost:8080/metrics | grep '^performer_pages_'
