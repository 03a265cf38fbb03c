curl -s 'localhost:8080/v1/rooms/lobby/json'              # {"room", "seq", "doc": {ROOT: value}}
curl -s 'localhost:8080/v1/rooms/lobby/json?at=12&types=notes:text,meta:map'
