performer serve --auth-secret "$SECRET" --hooks examples.message_check:MessageCheck
