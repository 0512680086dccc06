#!/usr/bin/env python3
"""An OpenAI-compatible chat-completions server for load tests: asyncio, one
coroutine per connection, streaming CHUNKS pieces over SECONDS (the first after
SECONDS/CHUNKS, then one every SECONDS/CHUNKS), then ``[DONE]``.

    .venv/bin/python bench/fake_provider.py --port 8900 [--chunks 20] [--seconds 10] [--close]

Used by bench/bench_live.py; holds thousands of streams in one process.
Speaks just enough HTTP/1.1: requests with a Content-Length body; answers in
chunked encoding on a connection kept alive for the next request, as
OpenAI-compatible servers do (vLLM, llama.cpp's server, OpenAI), or with
``--close`` a body delimited by closing the connection after ``[DONE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
HEAD_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunks: int, seconds: float, close: bool):
    def send(data: bytes) -> None:
        writer.write(data if close else b"%x\r\n%s\r\n" % (len(data), data))

    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed a kept connection
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length) or b"{}")
            model = body.get("model", "m")
            writer.write(HEAD_CLOSE if close else HEAD_CHUNKED)
            step = seconds / chunks
            for i in range(chunks):
                await asyncio.sleep(step)
                piece = f"word{i} " if i < chunks - 1 else f"word{i}."
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                send(f"data: {json.dumps(chunk)}\n\n".encode())
                await writer.drain()
            end = {
                "id": "x",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            send(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            if close:
                await writer.drain()
                return
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int, chunks: int, seconds: float, close: bool) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, chunks, seconds, close), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--close", action="store_true", help="close the connection after each answer")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.port, args.chunks, args.seconds, args.close))
