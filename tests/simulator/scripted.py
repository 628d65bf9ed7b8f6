"""A tiny scripted Twilio-side peer: raw ASGI under uvicorn in its own thread, no bot code involved.

Script (times are exact on the bot's side, so tests can check the simulator's arithmetic):
- ``POST /voice`` answers TwiML with ``<Connect><Stream url=".../media">``;
- on ``start``: ``GREETING_S`` of audio at once, then mark ``greeting-1``;
- when the caller stops talking (first silent frame after voiced ones) and no reply is playing: after
  ``REPLY_DELAY_S``, ``PART_S`` of audio + mark ``tN-1``; then, ``PART_S + GAP_S`` later (an underrun of
  ``GAP_S``), ``PART_S`` more + mark ``tN-2``;
- caller speech while a reply plays: ``clear`` after ``BARGE_S`` of voiced frames (the reply is dropped);
- DTMF: ``PART_S`` of audio + mark ``dN-1`` at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

GREETING_S = 0.4
REPLY_DELAY_S = 0.2
PART_S = 0.3
GAP_S = 0.25
BARGE_S = 0.3
SILENT = b"\xff" * 160
TONE = bytes(range(0x10, 0x70))


def _audio(seconds: float) -> bytes:
    n = int(8000 * seconds)
    return (TONE * (n // len(TONE) + 1))[:n]


SENT: dict[str, list[tuple[str, float]]] = {}
"""By CallSid: what the peer did and when (``time.monotonic()``), so tests compare the simulator's figures
with the delays that really happened, not with the script's (a late ``asyncio.sleep`` is not its error)."""


class Script:
    def __init__(self, send: Any) -> None:
        self._send = send
        self.sid = ""
        self.sent: list[tuple[str, float]] = []
        self.voiced = 0
        self.turn = 0
        self.replying_until = 0.0
        self.reply: asyncio.Task[None] | None = None

    async def text(self, message: dict[str, Any]) -> None:
        await self._send({"type": "websocket.send", "text": json.dumps({**message, "streamSid": self.sid})})

    async def audio(self, seconds: float) -> None:
        payload = base64.b64encode(_audio(seconds)).decode()
        await self.text({"event": "media", "media": {"payload": payload}})

    async def mark(self, name: str) -> None:
        await self.text({"event": "mark", "mark": {"name": name}})

    async def on(self, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        if event == "start":
            self.sid = msg["streamSid"]
            SENT[msg["start"]["callSid"]] = self.sent
            await self.audio(GREETING_S)
            await self.mark("greeting-1")
        elif event == "media":
            voiced = base64.b64decode(msg["media"]["payload"]) != SILENT
            if voiced:
                self.voiced += 1
                if self.reply is not None and self.voiced * 0.02 >= BARGE_S - 1e-9:
                    self.reply.cancel()
                    self.reply = None
                    await self.text({"event": "clear"})
            elif self.voiced:
                self.voiced = 0
                self.sent.append(("caller-stopped", time.monotonic()))
                if self.reply is None:
                    self.turn += 1
                    self.reply = asyncio.create_task(self._reply(self.turn))
        elif event == "dtmf":
            self.turn += 1
            await self.audio(PART_S)
            await self.mark(f"d{self.turn}-1")

    async def _reply(self, turn: int) -> None:
        await asyncio.sleep(REPLY_DELAY_S)
        self.sent.append((f"t{turn}-1", time.monotonic()))
        await self.audio(PART_S)
        await self.mark(f"t{turn}-1")
        await asyncio.sleep(PART_S + GAP_S)
        self.sent.append((f"t{turn}-2", time.monotonic()))
        await self.audio(PART_S)
        await self.mark(f"t{turn}-2")
        await asyncio.sleep(PART_S + 0.1)
        self.reply = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            f'<Stream url="wss://{host}/media"><Parameter name="token" value="t" /></Stream>'
            "</Connect></Response>"
        ).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/xml")]}
        )
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        script = Script(send)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                if script.reply is not None:
                    script.reply.cancel()
                return
            if message.get("text"):
                await script.on(json.loads(message["text"]))


@contextmanager
def scripted_server() -> Iterator[str]:
    """Serves ``app`` on a free loopback port in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("scripted server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
