performer serve --auth-secret "$SECRET" --rules examples/chat-rules.toml
performer serve --auth-secret "$SECRET" --rules examples/deeper-rules.toml
performer serve --auth-secret "$SECRET" --rules examples/author-rules.toml
