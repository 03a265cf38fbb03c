performer serve --auth-secret "$SECRET" --rules examples/chat-rules.toml
