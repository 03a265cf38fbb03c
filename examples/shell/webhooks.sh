# --8<-- [start:serve]
performer serve --webhook https://example.com/hook --webhook-secret "$WEBHOOK_SECRET"
# --8<-- [end:serve]
# --8<-- [start:parked]
performer webhooks --data ./data                  # parked rooms and why
performer webhooks --data ./data --retry lobby    # or --retry '*'; delivery resumes
# --8<-- [end:parked]
