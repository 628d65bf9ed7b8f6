"""CPU per inbound WebSocket message in the stack under the media socket: uvicorn, Litestar, and floors.

Run: ``python -m bench.ws_stack`` (``--connections 100 --seconds 10``). Not a test: it prints a table with the
CPU model. ``bench.wire_path`` measures our own code per message; this measures what happens before a
message reaches it. Each row starts a server process on CPU 0 whose WebSocket handler only receives and
drops messages, and a client on the other CPUs that keeps ``--connections`` sockets open, each sending one
Twilio-sized ``media`` message every 20 ms, as Twilio does. The server's CPU time (``/proc``) over the
steady window divided by the messages sent in it is the stack's cost per message; at 200 calls (10,000
inbound messages a second) every 10 µs of it is 10 % of a core.

Rows: a bare ASGI app under uvicorn with each of uvicorn's WebSocket implementations; a Litestar app with one
``@websocket`` route reading the way ``web.media_ws`` does (``socket.receive``); then, without ASGI, the
``websockets`` library's own asyncio server, and as the floor an ``asyncio.Protocol`` on uvloop that
parses the frames by hand (what the event loop, the sockets and the unmasking cost at the least). The two
``out:`` rows measure the other direction, the bot's audio: the server sends and the clients count (its
"% core at 200" assumes the bot talks half the call, 1,000 outbound messages a second at 200 calls).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bench.processes import Placement, cpu_seconds
from bench.run import machine

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

VARIANTS: dict[str, tuple[str, str]] = {
    "ASGI, websockets-sansio": ("asgi", "websockets-sansio"),
    "ASGI, websockets (legacy)": ("asgi", "websockets"),
    "Litestar route, websockets-sansio": ("litestar", "websockets-sansio"),
    "ours: web.media_protocol, direct path": ("direct", ""),
    "websockets' own server, no ASGI": ("websockets", ""),
    "floor: asyncio.Protocol, frames by hand": ("protocol", ""),
    "out: Litestar send_text (ASGI send)": ("out-asgi", ""),
    "out: web.media_protocol, direct way out": ("out-direct", ""),
}
"""Rows: kind and uvicorn ``ws``. The ``out-`` rows turn the stream round: the server sends a Twilio-sized
outbound ``media`` message (100 ms of audio) every 20 ms per socket and the clients count what arrives."""


def media_message(seq: int) -> str:
    payload = base64.b64encode(b"\xff" * 160).decode()
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {"track": "inbound", "chunk": str(seq), "timestamp": str(seq * 20), "payload": payload},
            "streamSid": "MZ" + "0" * 32,
        }
    )


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


class _Drop:
    def offer(self, text: str) -> bool:
        return True


async def direct_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """The bare app with the media socket's direct path: every text frame is offered and taken."""
    from web.media_protocol import install_direct

    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        install_direct(scope, _Drop())
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    await bare_asgi(scope, receive, send)


def outbound_message() -> str:
    payload = base64.b64encode(b"\xff" * 800).decode()
    return json.dumps({"event": "media", "streamSid": "MZ" + "0" * 32, "media": {"payload": payload}})


def litestar_out_app(direct: bool) -> Any:
    """The bot's way out, as ``web.media_ws`` sends: Litestar's ``send_text``, or the direct way first."""
    from litestar import Litestar, WebSocket, websocket

    from web.media_protocol import direct_sender

    @websocket("/media")
    async def media(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        send_now = direct_sender(socket.scope) if direct else None
        message = outbound_message()
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if send_now is None or not send_now(message):
                await socket.send_text(message)  # raises once the client is gone: the route ends
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    return Litestar(route_handlers=[media])


def litestar_app() -> Any:
    from litestar import Litestar, WebSocket, websocket

    @websocket("/media")
    async def media(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        receive = socket.receive
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return Litestar(route_handlers=[media])


class _HandParsed(asyncio.Protocol):
    """Answers the upgrade, then drops every frame: a header, a mask, the payload unmasked in C."""

    def __init__(self) -> None:
        self._buf = b""
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        from websockets.speedups import apply_mask  # type: ignore[import-not-found, unused-ignore]

        buf = self._buf + data
        if not self._open:
            head, sep, buf = buf.partition(b"\r\n\r\n")
            if not sep:
                self._buf = head
                return
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455: SHA-1 is what the handshake is
            accept = base64.b64encode(hashlib.sha1(key + guid).digest())  # noqa: S324
            reply = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            self._transport.write(reply + b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")  # type: ignore[attr-defined]
            self._open = True
        while len(buf) >= 6:
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + 4 + n:
                break
            payload = apply_mask(buf[at + 4 : at + 4 + n], buf[at : at + 4])
            buf = buf[at + 4 + n :]
            if opcode == 1:
                payload.decode()
            elif opcode == 8:
                self._transport.close()
                return
        self._buf = buf


def serve(kind: str, ws: str, port: int) -> None:
    import uvloop  # as under uvicorn (its "auto" loop)

    if kind == "websockets":
        uvloop.run(_websockets_server(port))
        return
    if kind == "protocol":
        loop = uvloop.new_event_loop()
        server = loop.run_until_complete(loop.create_server(_HandParsed, "127.0.0.1", port))
        loop.run_until_complete(server.serve_forever())
        return
    import uvicorn

    if kind.startswith("out-"):
        from web.media_protocol import MediaSocketProtocol

        app = litestar_out_app(kind == "out-direct")
        uvicorn.run(app, host="127.0.0.1", port=port, ws=MediaSocketProtocol, log_level="warning")
        return
    if kind == "direct":
        from web.media_protocol import MediaSocketProtocol

        uvicorn.run(
            direct_asgi,
            host="127.0.0.1",
            port=port,
            ws=MediaSocketProtocol,
            log_level="warning",
            ws_per_message_deflate=False,
        )
        return
    app = bare_asgi if kind == "asgi" else litestar_app()
    uvicorn.run(app, host="127.0.0.1", port=port, ws=ws, log_level="warning", ws_per_message_deflate=False)


async def _websockets_server(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # the readiness probe is no handshake

    async def handler(sock: ServerConnection) -> None:
        async for _message in sock:
            pass

    async with serve(handler, "127.0.0.1", port, compression=None) as server:
        await server.serve_forever()


async def _load(port: int, connections: int, seconds: float, pid: int) -> tuple[int, float, float]:
    """Messages sent in the steady window, the server's CPU % over it, and its CPU seconds."""
    from websockets.asyncio.client import connect

    sent = [0]
    window: dict[str, float] = {}
    stop = asyncio.Event()

    async def one(i: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/media", compression=None) as sock:
            loop = asyncio.get_running_loop()
            next_at = loop.time() + (i % 50) / 50 * 0.02  # spread the connections over the 20 ms
            seq = 0
            while not stop.is_set():
                await sock.send(media_message(seq))
                seq += 1
                if "start" in window:
                    sent[0] += 1
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - loop.time()))

    tasks = [asyncio.create_task(one(i)) for i in range(connections)]
    await asyncio.sleep(2.0)  # every socket open and paced
    window["start"] = time.monotonic()
    cpu0 = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    cpu1 = cpu_seconds(pid)
    span = time.monotonic() - window["start"]
    count = sent[0]
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return count, (cpu1 - cpu0) / span * 100, cpu1 - cpu0


async def _load_out(port: int, connections: int, seconds: float, pid: int) -> tuple[int, float, float]:
    """Messages received in the steady window, the server's CPU % over it, and its CPU seconds."""
    from websockets.asyncio.client import connect

    got = [0]
    window: dict[str, float] = {}

    async def one() -> None:
        async with connect(f"ws://127.0.0.1:{port}/media", compression=None, max_size=None) as sock:
            async for _message in sock:
                if "start" in window:
                    got[0] += 1

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    await asyncio.sleep(2.0)
    window["start"] = time.monotonic()
    cpu0 = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    cpu1 = cpu_seconds(pid)
    count = got[0]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return count, (cpu1 - cpu0) / (time.monotonic() - window["start"]) * 100, cpu1 - cpu0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no server on port {port}")


def measure(kind: str, ws: str, connections: int, seconds: float, port: int = 0) -> tuple[int, float, float]:
    """One server stack under load: messages in the steady window, the server's CPU % and µs per message."""
    port = port or _free_port()
    placement = Placement.split()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.ws_stack", "--serve", kind, "--ws", ws, "--port", str(port)]
    )
    cpus = os.sched_getaffinity(0)
    placement.pin_server(server.pid)
    placement.pin_load(os.getpid())
    try:
        _wait_listening(port)
        load = _load_out if kind.startswith("out-") else _load
        count, cpu_pct, cpu_s = asyncio.run(load(port, connections, seconds, server.pid))
    finally:
        os.sched_setaffinity(0, cpus)  # the caller (a test run, bench.call_cost) keeps its own CPUs
        server.terminate()
        server.wait(10)
    return count, cpu_pct, cpu_s / count * 1e6 if count else float("nan")


def run_row(name: str, kind: str, ws: str, args: argparse.Namespace, port: int) -> str:
    count, cpu_pct, per_msg = measure(kind, ws, args.connections, args.seconds, port)
    # 10,000 messages a second at 200 calls: one µs per message is one % of a core. The bot's way out: ten a
    # second while it talks, about half the call, so 1,000 a second at 200 calls.
    at_200 = per_msg / 10 if kind.startswith("out-") else per_msg
    return f"{name:<40} {count / args.seconds:>9.0f} {cpu_pct:>7.1f} {per_msg:>9.1f} {at_200:>14.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--serve", choices=sorted({kind for kind, _ws in VARIANTS.values()}), help=argparse.SUPPRESS
    )
    parser.add_argument("--ws", default="websockets-sansio", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rows", default="", help="only these server kinds, e.g. asgi,direct,protocol (default: all rows)"
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.ws, args.port)
        return 0
    print(f"machine: {machine()}; {Placement.split().describe()}")
    print(f"{args.connections} sockets, one {len(media_message(0))}-character media message each every 20 ms")
    print(f"{'server stack':<40} {'msgs/s':>9} {'CPU %':>7} {'µs/msg':>9} {'% core at 200':>14}")
    wanted = set(filter(None, args.rows.split(",")))
    for i, (name, (kind, ws)) in enumerate(VARIANTS.items()):
        if wanted and kind not in wanted:
            continue
        print(run_row(name, kind, ws, args, args.port + i if args.port else _free_port()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
