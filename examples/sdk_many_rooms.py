# Many rooms over one socket (the Hocuspocus dialect at /hocuspocus), each with its own status.
import asyncio

from pycrdt import Array

from engine.client import connect_many


async def main() -> None:
    async with connect_many("ws://127.0.0.1:8080", ["card-1", "card-2"], store_path=None) as rooms:
        rooms["card-1"].doc.get("items", type=Array).append("hello")
        await rooms["card-1"].saved()  # durable on the server
        print(rooms["card-1"].status, rooms["card-2"].status)  # saved saved


asyncio.run(main())
