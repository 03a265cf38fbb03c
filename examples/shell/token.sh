performer token --secret "$SECRET" --room 'team-*' --user alice --ttl 3600
performer token --secret "$SECRET" --room 'team-*' --user alice --ttl 3600 --read-only
