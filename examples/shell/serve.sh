performer serve --host 127.0.0.1 --port 8080 --data ./data --auth-secret "$SECRET"
