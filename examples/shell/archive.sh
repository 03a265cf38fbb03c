# continuous archive (within about a second of each commit) and point-in-time recovery
performer serve --data ./data --archive ./archive      # or a mounted volume: --archive /mnt/archive
performer recover --archive ./archive --out ./as-of-monday --to-time 2026-03-14T09:30:00Z
performer recover --archive ./archive --out ./lobby-at-12 --to-seq lobby:12
