performer serve --data ./data                  # no auth: open http://127.0.0.1:8080/console from this machine
performer serve --auth-secret "$SECRET" --data ./data
xdg-open "http://127.0.0.1:8080/console?token=$(performer token --secret "$SECRET" --room '*' --user ops --admin)"
