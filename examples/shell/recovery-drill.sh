performer recover --archive ./archive --out ./data.new   # everything archived
performer verify --data ./data.new
performer serve --data ./data.new
