# bounded history: keep the full log for 30 days (and/or the newest N bytes per room)
performer serve --data ./data --history-days 30        # --history-bytes 10000000
performer serve --data ./data --history-bytes 10000000
