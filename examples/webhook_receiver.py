"""A webhook receiver that checks the signature: `WEBHOOK_SECRET=... python -m
examples.webhook_receiver`, and `performer serve --webhook http://127.0.0.1:9000/hook`."""

import hashlib
import hmac
import json
import os

from aiohttp import web

SECRET = os.environ["WEBHOOK_SECRET"].encode()


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Performer-Signature", "")):
        raise web.HTTPUnauthorized()
    change = json.loads(body)
    print(change["room"], change["from_seq"], "..", change["to_seq"], change["users"])
    return web.Response()


app = web.Application()
app.add_routes([web.post("/hook", hook)])

if __name__ == "__main__":
    web.run_app(app, port=9000)
