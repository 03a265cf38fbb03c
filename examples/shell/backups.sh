# online backup while the server runs: a new LMDB data directory + backup.json
performer backup --data ./data ./backups/monday        # or: --redis redis://HOST:6379/0
performer verify --data ./backups/monday
performer serve  --data ./backups/monday               # serves every room as it was
performer import --data ./elsewhere ./backups/monday   # or into Redis: --redis redis://HOST:6379/0

# scheduled from the server: every hour, keep the newest 24
performer serve --data ./data --backup-dir ./backups --backup-every 1h --backup-keep 24
