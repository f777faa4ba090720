"""python3-websockets client run against our WebSocket server (an independent peer).

Usage: client.py URL COMPRESSION(deflate|none) [too-large]
Prints one JSON object per line describing what it saw; exits 0.
"""
import asyncio
import json
import sys

import websockets


def out(**kw):
    print(json.dumps(kw), flush=True)


async def too_large(url, compression):
    comp = "deflate" if compression == "deflate" else None
    async with websockets.connect(url, compression=comp, max_size=2**24) as ws:
        await ws.send(b"\x00" * (2 * 1024 * 1024))
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        out(event="closed", code=ws.close_code, reason=ws.close_reason)


async def main(url, compression):
    comp = "deflate" if compression == "deflate" else None
    async with websockets.connect(url, compression=comp, subprotocols=["chat", "superchat"], max_size=2**24) as ws:
        out(event="open", subprotocol=ws.subprotocol, extensions=[type(e).__name__ for e in ws.extensions])
        await ws.send("hello from python")
        out(event="echo-text", data=await ws.recv())
        await ws.send(bytes(range(256)) * 4)
        b = await ws.recv()
        out(event="echo-binary", ok=b == bytes(range(256)) * 4, length=len(b))
        # A fragmented text message: one frame per piece (RFC 6455 §5.4), a 4-byte char split across fragments.
        pieces = ["frag-", "ment", "ed \U0001F600" * 3000]
        await ws.send(iter(pieces))
        got = await ws.recv()
        out(event="echo-fragmented", ok=got == "".join(pieces), length=len(got))
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        out(event="pong")
        big = "x" * 200_000
        await ws.send(big)
        out(event="echo-large", ok=(await ws.recv()) == big)
        await ws.close(4000, "python done")
        out(event="closed", code=ws.close_code, reason=ws.close_reason)


if len(sys.argv) > 3 and sys.argv[3] == "too-large":
    asyncio.run(too_large(sys.argv[1], sys.argv[2]))
else:
    asyncio.run(main(sys.argv[1], sys.argv[2]))
