curl -sN -H 'Accept: text/event-stream' 'localhost:8080/v1/rooms/lobby/changes?after=0' | head -n 3
# id: 1
# event: update
# data: {"seq": 1, "ts": 1764745000.1, "user": "ann", "update": "AQHM..."}
curl -s 'localhost:8080/v1/rooms/lobby/changes?after=41&wait=30'     # JSON, long-polls
