performer serve --data ./data --auth-secret "$SECRET" --restore-bytes-per-second 1048576   # 1 MiB/s per room
# a room restored faster than that: {"error": "past 1048576 bytes of restores per second per room"}
# with 503 and Retry-After; a restore that changes nothing writes nothing and costs nothing
curl -s localhost:8080/metrics | grep '^performer_restores_'
