"""The Python client SDK: a local replica of one room, kept in sync with a server.

    async with connect("ws://127.0.0.1:8080/rooms", "lobby", store_path="./client-data") as c:
        c.doc.get("messages", type=Array).append("hi")   # works online or offline
        await c.synced()   # the first sync with the server is done
        await c.saved()    # every local edit so far is durable on the server

Offline first: every local edit is stored before it is sent, and the document is rebuilt
from the store on start, so edits made with no server survive a restart of the process.
`store_path` is a directory (LMDB) that any number of clients, rooms and servers in one
process may share; replicas in it are kept per server + room. `store_path=None` keeps the
replica in memory only.

Modules: `connection` (the client), `local_store` (the replica on the KV protocol),
`shared_kv` (one store per directory per process), `replica` (document + store),
`link` (one WebSocket), `multiplex` (`connect_many`: many rooms over one socket, in the
Hocuspocus dialect), `status`, `presence`, `backoff`, `errors` (and the close-code
table), `chat` (the chat schema and `performer chat`).
"""

from engine.client.backoff import Backoff
from engine.client.connection import Client, connect, edit_and_save
from engine.client.errors import (
    AuthError,
    ClientClosed,
    ConnectionRejected,
    ReplicaInUse,
    WriteDenied,
)
from engine.client.local_store import LocalStore, ReplicaKey
from engine.client.multiplex import Multiplex, MultiplexedRoom, connect_many
from engine.client.status import Status

__all__ = [
    "AuthError",
    "Backoff",
    "Client",
    "ClientClosed",
    "ConnectionRejected",
    "LocalStore",
    "Multiplex",
    "MultiplexedRoom",
    "ReplicaInUse",
    "ReplicaKey",
    "Status",
    "WriteDenied",
    "connect",
    "connect_many",
    "edit_and_save",
]
