"""A loopback ElevenLabs input-streaming socket: ``/v1/text-to-speech/{voice_id}/stream-input`` (WebSocket).

It speaks the stream-input message shapes: an initial message whose text is one space (voice settings,
``generation_config.chunk_length_schedule``, optionally ``xi-api-key``), then text chunks; a chunk with
``flush: true`` (or ``try_trigger_generation`` once enough text is buffered, or simply enough text for the
schedule) starts a generation; ``{"text": ""}`` generates what is left, sends ``{"isFinal": true}`` and
closes. Audio leaves as ``{"audio": <base64>, "isFinal": null, "alignment": …}`` in 100 ms pieces.

``behaviour.tts`` paces and breaks it exactly like the HTTP route, so one injection covers both transports:
``ttfb_ms`` runs from the moment a generation is triggered (generations overlap: text sent while earlier
audio streams is already being rendered), ``per_token_ms`` is the gap between audio messages. Faults are
taken once per socket: ``REFUSE`` (upgrade answered 403), ``RATE_LIMIT`` / ``SERVER_ERROR`` (an error
message, then a close), ``TIMEOUT`` (text accepted, never any audio), ``RESET`` (closed after the first audio
message, no ``isFinal``) and ``MALFORMED`` (a broken JSON message where audio should be).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from typing import Any, Final
from urllib.parse import parse_qs

from fakes.asgi import Receive, Scope, Send
from fakes.behaviour import FakeBehaviour, Fault, RecordedRequest
from fakes.elevenlabs_api import CHUNK_MS, SpeechSource, _encode

ROUTE: Final = re.compile(r"^/v1/text-to-speech/(?P<voice>[^/]+)/stream-input$")
DEFAULT_SCHEDULE: Final = (120, 160, 250, 290)
_IN_BAND: Final = {
    Fault.RATE_LIMIT: ("too_many_concurrent_requests", "Too many concurrent requests.", 1008),
    Fault.SERVER_ERROR: ("internal_server_error", "An internal error occurred.", 1011),
}


class _Socket:
    """One stream-input connection: buffered text, a queue of triggered generations and their emitter."""

    def __init__(
        self,
        send: Send,
        behaviour: FakeBehaviour,
        speech: SpeechSource,
        stopping: asyncio.Event,
        fmt: str,
        record: dict[str, Any],
    ) -> None:
        self._send = send
        self._behaviour = behaviour
        self._speech = speech
        self._stopping = stopping
        self._fmt = fmt
        self._record = record
        self._buffer = ""
        self._schedule: tuple[int, ...] = DEFAULT_SCHEDULE
        self._generations = 0
        self._queue: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self.fault: Fault | None = None
        self.closed = False

    async def emit_text(self, text: str) -> None:
        async with self._lock:
            if not self.closed:
                try:
                    await self._send({"type": "websocket.send", "text": text})
                except Exception:  # noqa: BLE001 - the client went away meanwhile
                    self.closed = True

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            if not self.closed:
                self.closed = True
                with contextlib.suppress(Exception):
                    await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def fail(self, error: str, message: str, code: int) -> None:
        await self.emit_text(json.dumps({"message": message, "error": error, "code": code}))
        await self.close(code, error)

    async def pause(self, ms: float) -> bool:
        if ms > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ms / 1000):
                    await self._stopping.wait()
        return not self._stopping.is_set() and not self.closed

    def configure(self, first: dict[str, Any]) -> None:
        config = first.get("generation_config")
        schedule = config.get("chunk_length_schedule") if isinstance(config, dict) else None
        if isinstance(schedule, list) and schedule and all(isinstance(n, int) for n in schedule):
            self._schedule = tuple(schedule)

    def on_text(self, message: dict[str, Any]) -> bool:
        """Buffers one text message and triggers what it asks for; True once the text stream has ended."""
        text = message.get("text")
        if text == "" and not message.get("flush"):
            self._trigger()
            self._queue.put_nowait(None)
            return True
        if isinstance(text, str):
            self._buffer += text
        threshold = self._schedule[min(self._generations, len(self._schedule) - 1)]
        if message.get("flush") or len(self._buffer) >= threshold:
            self._trigger()
        return False

    def _trigger(self) -> None:
        text, self._buffer = self._buffer.strip(), ""
        if text:
            self._generations += 1
            self._queue.put_nowait((asyncio.get_running_loop().time(), text))

    async def emit_audio(self) -> None:
        """Renders the triggered generations in order, each no sooner than ``ttfb_ms`` after its trigger."""
        pacing = self._behaviour.tts.pacing
        loop = asyncio.get_running_loop()
        sent = 0
        while (item := await self._queue.get()) is not None:
            triggered, text = item
            if self.fault is Fault.TIMEOUT:
                continue
            if not await self.pause((triggered + pacing.ttfb_ms / 1000 - loop.time()) * 1000):
                return
            audio, bytes_per_ms = await _encode(await self._speech.pcm16(text), self._fmt)
            step = int(CHUNK_MS * bytes_per_ms)
            for offset in range(0, len(audio), step):
                if sent and not await self.pause(pacing.per_token_ms):
                    return
                if self.fault is Fault.MALFORMED:
                    await self.emit_text('{"audio": "//////", "isFinal": nu')
                    await self.close(1011)
                    return
                piece = audio[offset : offset + step]
                alignment = _alignment(text, len(audio) / bytes_per_ms) if offset == 0 else None
                await self.emit_text(
                    json.dumps(
                        {
                            "audio": base64.b64encode(piece).decode(),
                            "isFinal": None,
                            "normalizedAlignment": alignment,
                            "alignment": alignment,
                        }
                    )
                )
                sent += 1
                if self.fault is Fault.RESET:
                    await self.close(1011)
                    return
        if self.fault is Fault.TIMEOUT:
            await self._stopping.wait()  # a stall: the client gives up, or the server stops
            return
        await self.emit_text(json.dumps({"isFinal": True}))
        self._record["completed"] = True
        await self.close(1000)


def _alignment(text: str, duration_ms: float) -> dict[str, Any]:
    """Characters spread evenly over the audio: enough for a client that shows what was said when."""
    step = duration_ms / max(1, len(text))
    return {
        "chars": list(text),
        "charStartTimesMs": [round(i * step) for i in range(len(text))],
        "charDurationsMs": [round(step)] * len(text),
    }


async def handle(
    scope: Scope,
    receive: Receive,
    send: Send,
    behaviour: FakeBehaviour,
    speech: SpeechSource,
    stopping: asyncio.Event,
) -> None:
    """Serves one stream-input socket until the client, the fault or the server ends it."""
    if (await receive())["type"] != "websocket.connect":
        return
    match = ROUTE.match(scope["path"])
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    header_key = headers.get("xi-api-key")
    expected = behaviour.elevenlabs_api_key
    if match is None:
        await _deny(send, 404, "not_found", f"No route {scope['path']}")
        return
    if header_key is not None and (not header_key or (expected is not None and header_key != expected)):
        await _deny(send, 401, "invalid_api_key", "Invalid API key")
        return
    fault = behaviour.tts.take_fault()
    if fault is Fault.REFUSE:
        await send({"type": "websocket.close", "code": 1008})  # before accept: uvicorn answers HTTP 403
        return
    masked = {k: ("***" if k in ("authorization", "xi-api-key") else v) for k, v in headers.items()}
    record: dict[str, Any] = {
        "voice_id": match["voice"],
        "query": query,
        "messages": [],
        "ended": asyncio.Event(),
    }
    behaviour.requests.append(RecordedRequest("tts", scope["path"], masked, record))
    await send({"type": "websocket.accept"})
    fmt = query.get("output_format", "mp3_44100_128")
    sock = _Socket(send, behaviour, speech, stopping, fmt, record)
    sock.fault = fault
    emitter: asyncio.Task[None] | None = None
    stop = asyncio.ensure_future(stopping.wait())
    try:
        if fmt != "ulaw_8000" and not fmt.startswith("pcm_"):
            await sock.fail("invalid_output_format", f"The fake speaks ulaw_8000 and pcm_*, not {fmt}.", 1008)
            return
        first = True
        while not sock.closed:
            incoming = asyncio.ensure_future(receive())
            await asyncio.wait([incoming, stop], return_when=asyncio.FIRST_COMPLETED)
            if not incoming.done():
                incoming.cancel()
                await sock.close(1001)
                break
            message = incoming.result()
            if message["type"] == "websocket.disconnect":
                sock.closed = True
                break
            try:
                event = json.loads(message.get("text") or message.get("bytes") or b"")
            except ValueError:
                await sock.fail("invalid_message", "The message is not valid JSON.", 1008)
                break
            if not isinstance(event, dict):
                continue
            record["messages"].append({k: v for k, v in event.items() if k != "xi-api-key"})
            if first:
                first = False
                key = header_key if header_key is not None else event.get("xi-api-key")
                if not key or (expected is not None and key != expected):
                    await sock.fail("invalid_api_key", "Invalid API key", 1008)
                    break
                if event.get("text") != " ":
                    await sock.fail("invalid_request", "The first message must have text ' '.", 1008)
                    break
                if fault in _IN_BAND:
                    await sock.fail(*_IN_BAND[fault])
                    break
                sock.configure(event)
                emitter = asyncio.create_task(sock.emit_audio(), name="fake_elevenlabs_ws_audio")
                continue
            sock.on_text(event)
    finally:
        stop.cancel()
        if emitter is not None:
            if sock.closed and not emitter.done():
                emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await emitter
        record["ended"].set()


async def _deny(send: Send, status: int, code: str, message: str) -> None:
    """Refuses the upgrade with an HTTP answer, as a real server does before accepting the socket."""
    body = json.dumps({"detail": {"status": code, "message": message}}).encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
