performer serve --hooks examples.time_bot:TimeBot
# open http://127.0.0.1:8080/?room=lobby&user=ann and send "/time"
