"""The media socket's direct path (``web.media_protocol``) against a real uvicorn server and a raw client.

The client writes frames byte for byte as a WebSocket peer would (masked, split anywhere, control frames
between messages), so each case checks what the hand parser makes of real bytes: which messages reach the
receiver directly, which reach ``receive()``, and in which order.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from fakes.loopback import serve_loopback
from web.media_protocol import MediaSocketProtocol, direct_sender, install_direct

Message = MutableMapping[str, Any]


@dataclass
class Seen:
    """Everything the app got, in the order it got it: ("direct" | "queued", text or bytes)."""

    log: list[tuple[str, Any]] = field(default_factory=list)
    installed: list[bool] = field(default_factory=list)
    decline: Callable[[str], bool] = lambda _text: False
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, text: str) -> bool:
        if self.decline(text):
            return False
        self.log.append(("direct", text))
        self.changed.set()
        return True

    async def until(self, count: int) -> None:
        while len(self.log) < count:
            self.changed.clear()
            await self.changed.wait()


def app_for(seen: Seen) -> Callable[[Message, Any, Any], Awaitable[None]]:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        if scope["path"] == "/direct":
            seen.installed.append(install_direct(scope, seen))
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                seen.closed.set()
                return
            seen.log.append(("queued", message.get("text", message.get("bytes"))))
            seen.changed.set()
            if message.get("text") == "close please":
                await send({"type": "websocket.close", "code": 1000})

    return app


@asynccontextmanager
async def server(seen: Seen) -> AsyncIterator[int]:
    async with serve_loopback(app_for(seen), name="media-protocol", ws_protocol=MediaSocketProtocol) as port:
        yield port


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(value: str) -> bytes:
    return frame(0x1, value.encode())


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes, *, bytewise: bool = False) -> None:
        for piece in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
            self.writer.write(piece)
            await self.writer.drain()

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (unmasked, as servers send)."""
        b0, b1 = await self.reader.readexactly(2)
        assert b1 & 0x80 == 0, "a server never masks"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        assert b0 & 0x80, "a server sends whole messages"
        return b0 & 0x0F, await self.reader.readexactly(n)


@asynccontextmanager
async def raw_client(port: int, path: str = "/direct") -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101"), response
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()


async def test_text_frames_reach_the_receiver_directly_even_split_byte_by_byte() -> None:
    seen = Seen()
    long = "x" * 300  # a 16-bit length, like Twilio's media messages
    async with server(seen) as port, raw_client(port) as client:
        await client.send(text("one"))
        await client.send(text(long) + text("three"), bytewise=True)
        await seen.until(3)
    assert seen.installed == [True]
    assert seen.log == [("direct", "one"), ("direct", long), ("direct", "three")]


async def test_declined_frames_go_to_receive_and_nothing_overtakes_them() -> None:
    seen = Seen(decline=lambda t: t.startswith("slow"))
    sent = ["a", "slow 1", "b", "c", "slow 2", "slow 3", "d"]
    async with server(seen) as port, raw_client(port) as client:
        await client.send(b"".join(text(t) for t in sent))
        await seen.until(len(sent))
    assert [t for _how, t in seen.log] == sent
    assert ("queued", "slow 1") in seen.log
    assert ("direct", "a") in seen.log


async def test_a_ping_is_answered_and_the_path_stays_direct() -> None:
    seen = Seen()
    async with server(seen) as port, raw_client(port) as client:
        await client.send(text("before") + frame(0x9, b"are you there") + text("after"))
        assert await client.frame() == (0xA, b"are you there")
        await seen.until(2)
    assert seen.log == [("direct", "before"), ("direct", "after")]


async def test_fragments_and_binary_frames_are_left_to_uvicorn_and_arrive_in_order() -> None:
    seen = Seen()
    async with server(seen) as port, raw_client(port) as client:
        await client.send(text("first"))
        await client.send(frame(0x1, b"frag", fin=False) + frame(0x0, b"mented") + frame(0x2, b"\x01\x02"))
        await client.send(text("last"))
        await seen.until(4)
    assert seen.log == [
        ("direct", "first"),
        ("queued", "fragmented"),
        ("queued", b"\x01\x02"),
        ("queued", "last"),
    ]


async def test_invalid_utf8_closes_with_1007_as_uvicorn_does() -> None:
    seen = Seen()
    async with server(seen) as port, raw_client(port) as client:
        await client.send(text("fine") + frame(0x1, b"\xff\xfe"))
        opcode, payload = await client.frame()
        await seen.closed.wait()
    assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 1007)
    assert seen.log == [("direct", "fine")]


async def test_unmasked_client_frames_fail_the_connection() -> None:
    seen = Seen()
    async with server(seen) as port, raw_client(port) as client:
        await client.send(frame(0x1, b"not masked", mask=False))
        opcode, payload = await client.frame()
        await seen.closed.wait()
    assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 1002)
    assert seen.log == []


async def test_the_peer_closing_completes_the_handshake_and_tells_the_app() -> None:
    seen = Seen()
    async with server(seen) as port, raw_client(port) as client:
        await client.send(text("bye") + frame(0x8, (1000).to_bytes(2, "big")))
        opcode, payload = await client.frame()
        await seen.closed.wait()
    assert (opcode, payload[:2]) == (0x8, (1000).to_bytes(2, "big"))
    assert seen.log == [("direct", "bye")]


async def test_after_the_app_closes_late_frames_are_dropped_and_the_close_reply_ends_it() -> None:
    seen = Seen(decline=lambda t: t == "close please")
    async with server(seen) as port, raw_client(port) as client:
        await client.send(text("close please"))
        assert (await client.frame())[0] == 0x8
        await client.send(text("too late") + frame(0x8, (1000).to_bytes(2, "big")))
        assert await client.reader.read() == b""  # the server closed the TCP connection
    assert seen.log == [("queued", "close please")]


async def test_a_route_without_a_receiver_is_served_as_by_uvicorn() -> None:
    seen = Seen()
    async with server(seen) as port, raw_client(port, "/plain") as client:
        await client.send(text("one") + frame(0x9, b"p") + text("two"))
        assert await client.frame() == (0xA, b"p")
        await seen.until(2)
    assert seen.installed == []
    assert seen.log == [("queued", "one"), ("queued", "two")]


@pytest.mark.parametrize("answer", [True, False])
async def test_keepalive_pongs_are_checked_on_the_direct_path(answer: bool) -> None:
    """uvicorn pings; with ``ping_timeout`` it sends the next ping only after the right pong came back."""
    seen = Seen()
    config = {"ws_ping_interval": 0.05, "ws_ping_timeout": 0.5}
    async with (
        serve_loopback(
            app_for(seen), name="media-protocol", ws_protocol=MediaSocketProtocol, **config
        ) as port,
        raw_client(port) as client,
    ):
        await client.send(text("hello"))
        opcode, payload = await client.frame()
        assert opcode == 0x9
        if answer:
            await client.send(frame(0xA, payload))
            assert (await client.frame())[0] == 0x9  # the next ping: the pong was taken
        else:
            opcode, payload = await client.frame()
            assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 1011)
        await seen.until(1)
    assert seen.log == [("direct", "hello")]


def sending_app(took: list[bool]) -> Callable[[Message, Any, Any], Awaitable[None]]:
    """After the accept, each text message is a command: "mix" answers four messages, alternately through
    the direct way out and through ASGI's send; "close please" closes, then tries the direct way once more.
    ``took`` records what each direct attempt returned."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        send_now = direct_sender(scope)
        assert send_now is not None
        sizes = {"a": 5, "b": 300, "c": 70_000, "d": 125}
        while (message := await receive())["type"] != "websocket.disconnect":
            if message.get("text") == "mix":
                for i, (name, size) in enumerate(sizes.items()):
                    body = name * size
                    if i % 2:
                        took.append(send_now(body))
                    else:
                        await send({"type": "websocket.send", "text": body})
            elif message.get("text") == "close please":
                await send({"type": "websocket.close", "code": 1000})
                took.append(send_now("late"))

    return app


async def test_the_direct_way_out_writes_whole_frames_in_order_with_asgi_sends() -> None:
    took: list[bool] = []
    async with (
        serve_loopback(sending_app(took), name="media-protocol", ws_protocol=MediaSocketProtocol) as port,
        raw_client(port, "/any") as client,
    ):
        await client.send(text("mix"))
        got = [await client.frame() for _ in range(4)]
        # 5 and 125 bytes: a 7-bit length; 300: 16-bit; 70,000: 64-bit, each as one final text frame
        assert got == [(0x1, b"a" * 5), (0x1, b"b" * 300), (0x1, b"c" * 70_000), (0x1, b"d" * 125)]
        assert took == [True, True]
        await client.send(text("close please"))
        opcode, payload = await client.frame()
        assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 1000)
        assert took == [True, True, False]  # after the close, only uvicorn's send may speak (and refuses)


async def test_without_the_media_protocol_there_is_no_direct_way_out() -> None:
    scopes: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        scopes.append(scope)
        await send({"type": "websocket.close", "code": 1000})

    async with serve_loopback(app, name="plain-uvicorn", websockets=True) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 403")
        writer.close()
    assert direct_sender(scopes[0]) is None
