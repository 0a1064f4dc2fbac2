#!/usr/bin/env python3
"""A WebSocket client the end-to-end tests drive line by line, written with
another library (Python `websockets`) than the server (tokio-tungstenite),
so that the two cannot agree on a mistake.

    driver.py URL [--token TOKEN]

--token sends `Authorization: Bearer TOKEN` with the upgrade.

stdin, one JSON object per line:
    {"send": <any JSON>}   send it as a text frame
    {"raw": "<text>"}      send this text as is
    {"binary": "<text>"}   send it as a binary frame
    {"close": true}        close normally and exit

stdout, one JSON object per line:
    {"open": true}                         the upgrade succeeded
    {"refused": <HTTP status>, "body": s}  the upgrade was refused
    {"text": <the frame's JSON>}           a text frame from the server
    {"closed": <code>, "reason": "..."}    the server closed; then exit
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def pump_stdin(ws):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if "send" in cmd:
            await ws.send(json.dumps(cmd["send"]))
        elif "raw" in cmd:
            await ws.send(cmd["raw"])
        elif "binary" in cmd:
            await ws.send(cmd["binary"].encode())
        elif cmd.get("close"):
            await ws.close()
            return


async def main():
    url = sys.argv[1]
    headers = {}
    if "--token" in sys.argv:
        headers["Authorization"] = "Bearer " + sys.argv[sys.argv.index("--token") + 1]
    try:
        ws = await connect(url, additional_headers=headers, max_size=2**24, ping_interval=None)
    except InvalidStatus as e:
        out({"refused": e.response.status_code, "body": e.response.body.decode(errors="replace")})
        return
    out({"open": True})
    stdin = asyncio.create_task(pump_stdin(ws))
    try:
        async for frame in ws:
            out({"text": json.loads(frame)})
    except ConnectionClosed:
        pass
    stdin.cancel()
    out({"closed": ws.close_code or 1006, "reason": ws.close_reason or ""})


asyncio.run(main())
