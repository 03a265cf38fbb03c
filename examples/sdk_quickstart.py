# performer serve --port 8080 --data ./data      (then, in another shell:)
import asyncio

from pycrdt import Array

from engine.client import connect


async def main() -> None:
    async with connect("ws://127.0.0.1:8080/rooms", "lobby", store_path="./client-data") as client:
        items = client.doc.get("items", type=Array)
        items.append("hello")  # works offline too: kept in ./client-data until sent
        await client.saved()  # now durable on the server (survives kill -9)
        print(client.status, items.to_py())  # saved ['hello']


asyncio.run(main())
