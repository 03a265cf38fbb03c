"""Server-enforced rules on parts of a room, transport-free.

`owners`: which user each Yjs client id belongs to (per-room metadata in the store), so
that everything which says who wrote what can trust the client id.
"""
