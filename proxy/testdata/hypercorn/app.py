"""An ASGI app for zdgate's upgrade tests, served by Debian's Hypercorn (python3-hypercorn), which
accepts h2c upgrades. Every HTTP request it serves, on HTTP/1.1 or HTTP/2, is appended as one JSON
line to the file named by APP_LOG (path, HTTP version, X-Forwarded-User) and echoed as the answer,
so a test sees exactly which requests reached the app and as whom."""

import json
import os

LOG = os.environ["APP_LOG"]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return  # WebSocket: never accepted, Hypercorn answers 403
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    entry = {
        "path": scope["path"],
        "http_version": scope["http_version"],
        "user": headers.get("x-forwarded-user", ""),
    }
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    body = json.dumps(entry).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
