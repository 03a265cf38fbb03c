performer serve --auth-secret "$SECRET" --rules examples/chat-rules.toml --data ./data &
ADMIN=$(performer token --secret "$SECRET" --room '*' --user ops --admin)
curl -s -H "Authorization: Bearer $ADMIN" 'http://127.0.0.1:8080/v1/rooms?detail=1' | jq '.rooms[] | {name, refusals}'
# {"name": "chat", "refusals": 1}   (after someone deleted another's message)
