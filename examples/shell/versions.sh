J='Content-Type: application/json'
curl -s -X POST -H "$J" localhost:8080/v1/rooms/lobby/versions -d '{"name": "before the launch"}'
curl -s localhost:8080/v1/rooms/lobby/versions            # {"versions": [{"name", "seq"}]}
curl -s -X POST -H "$J" localhost:8080/v1/rooms/lobby/restore -d '{"seq": 12}'   # {"seq": 57, ...}
