# bounded history: keep the full log for 30 days (and/or the newest N bytes per room)
performer serve --data ./data --history-days 30        # --history-bytes 10000000
performer serve --data ./data --history-bytes 10000000
# ... and per room pattern: a name, or a prefix ending in * (the most specific one wins)
performer serve --data ./data --history-days 30 \
  --history-room 'scratch-*:days=1' --history-room 'notebook-*:days=7,bytes=50000000' \
  --history-room 'legal-*:all'                         # all: keep everything
