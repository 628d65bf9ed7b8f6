"""A loopback OpenAI Realtime transcription session: ``GET /v1/realtime?intent=transcription`` (WebSocket).

It speaks the GA event shapes the official SDK sends and parses: ``session.update`` → ``session.updated``;
``input_audio_buffer.append`` / ``commit`` / ``clear``; per committed segment ``input_audio_buffer.committed``
then ``conversation.item.input_audio_transcription.delta`` events and one ``…completed``. The words are those
of the registered clips found in the committed audio (``fakes/clips.py``), else the scripted queue, so a
test sees which audio reached the transcriber.

``behaviour.realtime`` paces and breaks it: ``ttfb_ms`` is the delay from commit to the first delta,
``per_token_ms`` the gap between deltas. Faults: ``REFUSE`` (the upgrade is refused, HTTP 403), ``TIMEOUT``
(a commit is never answered: a stall), ``RESET`` (the socket closes after the first delta), ``MALFORMED`` (a
broken event before the real ones) and ``PARTIALS_ONLY`` (deltas, never a final).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from typing import Any

from fakes.asgi import Receive, Scope, Send
from fakes.behaviour import FakeBehaviour, Fault, RecordedRequest
from media.codec import ulaw_to_pcm16

REALTIME_PATH = "/v1/realtime"
HEARD_BYTES = 30 * 8000
"""30 s of μ-law: enough to find the start of any test clip a commit continues."""


class _Session:
    def __init__(self, send: Send, behaviour: FakeBehaviour, stopping: asyncio.Event) -> None:
        self._send = send
        self._behaviour = behaviour
        self._stopping = stopping
        self._buffer = bytearray()
        self._heard = bytearray()
        """The last ``HEARD_BYTES`` appended (μ-law): where a commit sits in the caller's speech."""
        self._items = 0
        self._previous: str | None = None
        self._lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    async def emit(self, event: dict[str, Any]) -> None:
        await self.emit_text(json.dumps(event, ensure_ascii=False))

    async def emit_text(self, text: str) -> None:
        async with self._lock:
            if not self.closed:
                try:
                    await self._send({"type": "websocket.send", "text": text})
                except Exception:  # noqa: BLE001 - the client went away meanwhile
                    self.closed = True

    async def close(self, code: int) -> None:
        async with self._lock:
            if not self.closed:
                self.closed = True
                await self._send({"type": "websocket.close", "code": code})

    async def pause(self, ms: float) -> bool:
        if ms > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ms / 1000):
                    await self._stopping.wait()
        return not self._stopping.is_set() and not self.closed

    async def on_event(self, event: dict[str, Any], path: str, headers: dict[str, str]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            try:
                chunk = base64.b64decode(str(event.get("audio", "")), validate=True)
            except (binascii.Error, ValueError):
                await self.emit(_error("invalid_value", "Invalid base64 audio."))
                return
            self._buffer += chunk
            self._heard += chunk
            del self._heard[:-HEARD_BYTES]
            return
        self._behaviour.requests.append(RecordedRequest("realtime", path, headers, event))
        if kind == "session.update":
            session = event.get("session")
            if not isinstance(session, dict) or session.get("type") != "transcription":
                await self.emit(_error("invalid_value", "session.type must be 'transcription'."))
                return
            await self.emit({"type": "session.updated", "session": session})
        elif kind == "input_audio_buffer.clear":
            self._buffer.clear()
            await self.emit({"type": "input_audio_buffer.cleared"})
        elif kind == "input_audio_buffer.commit":
            await self._commit()
        else:
            await self.emit(_error("invalid_type", f"Unsupported event type {kind!r}."))

    async def _commit(self) -> None:
        if len(self._buffer) < 800:
            await self.emit(_error("input_audio_buffer_commit_empty", "buffer too small: at least 100ms"))
            return
        audio, self._buffer = bytes(self._buffer), bytearray()
        self._items += 1
        item = f"item_fake_{self._items}"
        await self.emit(
            {"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": self._previous}
        )
        self._previous = item
        fault = self._behaviour.realtime.take_fault()
        task = asyncio.create_task(
            self._answer(item, audio, bytes(self._heard), fault), name="fake_realtime_answer"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, item: str, audio: bytes, context: bytes, fault: Fault | None) -> None:
        pacing = self._behaviour.realtime.pacing
        clips = self._behaviour.clips
        heard = clips.transcribe_tail(ulaw_to_pcm16(context), 2 * len(audio)) if clips else None
        text = heard if heard is not None else self._behaviour.next_transcript()
        if fault is Fault.TIMEOUT or not await self.pause(pacing.ttfb_ms):
            return
        if fault is Fault.MALFORMED:
            await self.emit_text('{"type": "conversation.item.input_audio_transcription.del')
        for n, word in enumerate(re.findall(r"\s*\S+", text)):
            if n and not await self.pause(pacing.per_token_ms):
                return
            await self.emit(_delta(item, word))
            if fault is Fault.RESET:
                await self.close(1011)
                return
        if fault is Fault.PARTIALS_ONLY:
            return
        await self.emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(len(audio) / 8000, 2)},
            }
        )


def _delta(item: str, text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": item,
        "content_index": 0,
        "delta": text,
    }


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": code, "message": message, "param": None},
    }


async def handle(
    scope: Scope, receive: Receive, send: Send, behaviour: FakeBehaviour, stopping: asyncio.Event
) -> None:
    """Serves one WebSocket until the client or the server ends it."""
    if (await receive())["type"] != "websocket.connect":
        return
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    token = headers.get("authorization", "").removeprefix("Bearer ").strip()
    expected = behaviour.openai_api_key
    conduct = behaviour.realtime
    refused = conduct.fault is Fault.REFUSE and conduct.take_fault() is Fault.REFUSE
    if scope["path"] != REALTIME_PATH or refused or not token or (expected is not None and token != expected):
        await send({"type": "websocket.close", "code": 1008})  # before accept: uvicorn answers HTTP 403
        return
    masked = {k: ("***" if k == "authorization" else v) for k, v in headers.items()}
    await send({"type": "websocket.accept"})
    session = _Session(send, behaviour, stopping)
    await session.emit({"type": "session.created", "session": {"type": "transcription", "id": "sess_fake"}})
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while not session.closed:
            incoming = asyncio.ensure_future(receive())
            await asyncio.wait([incoming, stop], return_when=asyncio.FIRST_COMPLETED)
            if not incoming.done():
                incoming.cancel()
                await session.close(1001)
                break
            message = incoming.result()
            if message["type"] == "websocket.disconnect":
                session.closed = True
                break
            try:
                event = json.loads(message.get("text") or message.get("bytes") or b"")
            except ValueError:
                await session.emit(_error("invalid_json", "The event is not valid JSON."))
                continue
            if isinstance(event, dict):
                await session.on_event(event, scope["path"], masked)
    finally:
        stop.cancel()
        for task in list(session.tasks):
            task.cancel()
        for task in list(session.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
