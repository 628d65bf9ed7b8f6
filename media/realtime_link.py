"""The wire side of a realtime transcription socket: ordered sends, event parsing, one segment's state.

Kept apart from the transcriber's budget and fallback logic (``media/stt_realtime.py``) because this part
knows the event names and shapes and nothing about turns, budgets or batch uploads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from media.errors import ProviderError

log = structlog.get_logger()

EventHandler = Callable[["RealtimeLink", dict[str, Any]], None]
LossHandler = Callable[["RealtimeLink", str], None]


@dataclass(slots=True)
class Segment:
    """The audio being committed and what the server said about it so far."""

    audio: bytes
    done: asyncio.Future[str]
    item_id: str | None = None
    text: str = ""

    def apply(self, event: dict[str, Any]) -> str | None:
        """Takes one server event; returns the running text when a delta of this segment grew it."""
        kind = event.get("type")
        if kind == "error":
            if self.item_id is None and not self.done.done():
                self.done.set_exception(
                    ProviderError("stt", f"commit refused: {error_message(event)}", retryable=True)
                )
            return None
        if self.done.done():
            return None
        item = event.get("item_id")
        if kind == "input_audio_buffer.committed":
            if self.item_id is None and isinstance(item, str):
                self.item_id = item
            return None
        if self.item_id is None or item != self.item_id:
            return None
        if kind == "conversation.item.input_audio_transcription.delta":
            delta = event.get("delta")
            if isinstance(delta, str) and delta:
                self.text += delta
                return self.text
        elif kind == "conversation.item.input_audio_transcription.completed":
            transcript = event.get("transcript")
            self.done.set_result(transcript if isinstance(transcript, str) else self.text)
        elif kind == "conversation.item.input_audio_transcription.failed":
            self.done.set_exception(ProviderError("stt", "transcription failed", retryable=True))
        return None

    def fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(ProviderError("stt", reason, retryable=True))

    def restart(self) -> None:
        """Forgets the server's answer so far: the segment is sent again on a new socket."""
        settle(self.done)
        self.done = asyncio.get_running_loop().create_future()
        self.item_id, self.text = None, ""


@dataclass(slots=True, eq=False)
class RealtimeLink:
    """One WebSocket of a call: a writer task keeps sends in order, a reader task parses events."""

    conn: AsyncRealtimeConnection
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    up: bool = True

    def send(self, message: dict[str, Any]) -> None:
        if self.up:
            self.outbox.put_nowait(json.dumps(message))

    def run(self, on_event: EventHandler, on_lost: LossHandler, *, logger: Any = log) -> None:
        self.tasks.append(asyncio.create_task(self._write(on_lost), name="stt_realtime_write"))
        self.tasks.append(
            asyncio.create_task(self._read(on_event, on_lost, logger), name="stt_realtime_read")
        )

    async def _write(self, on_lost: LossHandler) -> None:
        try:
            while True:
                await self.conn.send_raw(await self.outbox.get())
        except Exception as exc:  # noqa: BLE001 - a broken socket: the owner falls back
            on_lost(self, f"send failed: {type(exc).__name__}")

    async def _read(self, on_event: EventHandler, on_lost: LossHandler, logger: Any) -> None:
        try:
            while True:
                raw = await self.conn.recv_bytes()
                try:
                    event = json.loads(raw)
                    if not isinstance(event, dict):
                        raise ValueError("not an object")
                except ValueError:
                    logger.warning("stt_realtime_malformed_event", size=len(raw))
                    continue
                on_event(self, event)
        except Exception as exc:  # noqa: BLE001 - closed or broken socket: the owner falls back
            on_lost(self, f"socket closed: {type(exc).__name__}")

    async def close(self) -> None:
        self.up = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.conn.close()


def append_event(ulaw: bytes | bytearray) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(ulaw).decode("ascii")}


def error_message(event: dict[str, Any]) -> str:
    error = event.get("error")
    return str(error.get("message", ""))[:200] if isinstance(error, dict) else ""


def settle(done: asyncio.Future[str]) -> None:
    """Cancels a pending future, or marks its exception as seen, so asyncio never warns about it."""
    if not done.done():
        done.cancel()
    elif not done.cancelled():
        done.exception()
