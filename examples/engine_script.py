"""The engine without a server: a DocStore on LMDB (or Redis) and pycrdt documents."""

from typing import Any

from pycrdt import Doc, Text, TransactionEvent

from engine import open_store
from engine.jsonview import to_json

store = open_store(data_dir="./data")  # or open_store(redis_url="redis://127.0.0.1:6379/0")


def keep(event: TransactionEvent) -> None:  # every local change goes to the room's log
    store.append("notes", event.update, user="script")


doc: Doc[Any] = Doc()
doc.observe(keep)
doc.get("t", type=Text).insert(0, "hello")

rebuilt: Doc[Any] = Doc()
for update in store.load("notes").updates:  # newest snapshot + the log after it
    rebuilt.apply_update(update)
print(store.history("notes", after=0, limit=10))  # seq, ts, user, bytes, clients
old = store.state_at("notes", 1)  # the room as it was after seq 1
print(to_json(old))  # {'t': 'hello'}
