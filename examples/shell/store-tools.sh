performer verify --data ./data            # decode every record, replay every room two ways
performer compact --data ./data --room lobby
performer export --data ./data --room lobby -o lobby.cbor
performer import --data ./other lobby.cbor --room copy
