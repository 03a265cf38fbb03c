curl -s localhost:8080/metrics | grep '^performer_compute_refused'
curl -si 'localhost:8080/v1/rooms/lobby/json?at=12' | grep -i -e '^HTTP' -e retry-after   # when busy:
# HTTP/1.1 503 Service Unavailable
# Retry-After: 2
