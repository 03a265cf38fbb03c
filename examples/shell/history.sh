curl -s 'localhost:8080/v1/rooms/lobby/history?after=0&limit=10'   # ... "next_after": 10, "more": true
curl -s 'localhost:8080/v1/rooms/lobby/history?after=10&limit=10'
curl -s -o lobby.bin 'localhost:8080/v1/rooms/lobby/state?at=10'   # the room as of seq 10
