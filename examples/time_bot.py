"""A chat bot as server hooks: answers "/time" in any chat room with the server's time.

    performer serve --hooks examples.time_bot:TimeBot

It reacts to every committed change (`on_change`, from the durable log, so a restart
answers what came in while it was down) and writes its answer as a server-side edit
(`rooms.edit`): durable, broadcast to every client, in the history under "time-bot".
"""

from datetime import datetime

from pycrdt import Array

from engine.client.chat import new_message
from server import Change, Hooks, Rooms

BOT = "time-bot"


class TimeBot(Hooks):
    async def on_start(self, rooms: Rooms) -> None:
        self.rooms = rooms

    async def on_change(self, change: Change) -> None:
        if change.user == BOT:
            return  # our own answer
        async with self.rooms.edit(change.room, user=BOT) as doc:
            messages = doc.get("messages", type=Array)
            answered = {m.get("reply_to") for m in messages if m.get("user") == BOT}
            for message in list(messages):
                if message.get("text") == "/time" and message.get("id") not in answered:
                    reply = new_message(BOT, f"It is {datetime.now():%H:%M:%S} here.")
                    messages.append(reply)
                    reply["reply_to"] = message.get("id")
