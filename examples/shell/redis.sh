redis-server --appendonly yes --appendfsync always --port 6379 &
performer serve --port 8081 --redis redis://127.0.0.1:6379/0 &
performer serve --port 8082 --redis redis://127.0.0.1:6379/0 &
# open http://127.0.0.1:8081/?room=lobby and http://127.0.0.1:8082/?room=lobby
performer migrate --data ./data --redis redis://127.0.0.1:6379/0   # copy LMDB rooms (re-runnable)
