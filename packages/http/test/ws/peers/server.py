"""python3-websockets server our WebSocket client talks to (an independent peer).

Usage: server.py COMPRESSION(deflate|none)
Prints {"port": N} once listening; runs until stdin closes.
Echoes messages; on "fragments" sends a fragmented message; on "ping-me" pings and
reports the pong; on "close-me" closes with 4002 "done"; on "bad-close" closes with 1011.
"""
import asyncio
import json
import sys

import websockets


async def handler(ws):
    async for msg in ws:
        if msg == "fragments":
            await ws.send(iter(["one ", "two ", "three \u00e9\u20ac"]))
        elif msg == "ping-me":
            waiter = await ws.ping(b"from python")
            await asyncio.wait_for(waiter, 5)
            await ws.send("pong-received")
        elif msg == "close-me":
            await ws.close(4002, "done")
        elif msg == "extensions":
            await ws.send(json.dumps([type(e).__name__ for e in ws.extensions]))
        else:
            await ws.send(msg)


async def main(compression):
    comp = "deflate" if compression == "deflate" else None
    async with websockets.serve(handler, "127.0.0.1", 0, compression=comp, subprotocols=["chat"], max_size=2**24) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main(sys.argv[1]))
