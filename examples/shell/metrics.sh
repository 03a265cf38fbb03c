curl -s localhost:8080/metrics | grep -e '^performer_commit_seconds_count' -e '^performer_loop_stall'
curl -s localhost:8080/healthz     # {"status": "ok", "rooms_loaded": ..., "connections": ..., "auth": ...}
