"""Text-to-speech on ElevenLabs' input-streaming WebSocket, ``/v1/text-to-speech/{voice}/stream-input``.

The socket takes text as it is written and returns ``ulaw_8000`` audio as base64 messages, so a reply's
clauses can be fed while the LLM still writes the rest, and audio of clause two is rendered while clause
one plays (``StreamedReply``). The session's speaker asks for one piece of text at a time (``synthesize``):
then each piece is one socket, initialised, fed, closed with the empty text and read to ``isFinal``.

The SDK only wraps this protocol synchronously (``convert_realtime``), so the adapter speaks it with the
``websockets`` client the SDK itself depends on. Every failure leaves as ``ProviderError`` classified like
the HTTP adapter's (401 final, 429/5xx/reset/stall retryable), so the failover and the backup voice behave
the same whichever transport is configured. Budgets are ``media.budget``'s: ``stream_with_budget`` for a
piece of text, the same first-audio and idle deadlines rescheduled per fed clause for a streamed reply.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from media.budget import DEFAULT_BUDGETS, status_retryable, stream_with_budget
from media.errors import ProviderError
from media.tts_elevenlabs import LANGUAGE_CODE_MODELS, OUTPUT_FORMAT

DEFAULT_BASE_URL: Final = "https://api.elevenlabs.io"
CHUNK_LENGTH_SCHEDULE: Final = (50, 120, 160, 250)
"""Characters buffered before the server renders without a flush; we flush at every clause anyway, so
this only matters for a long clause, where 50 starts the audio sooner than the default 120."""
CLOSE_TIMEOUT_S: Final = 0.5
"""A barge-in closes the socket; waiting longer for the server's close frame only delays the next turn."""

_ERROR_STATUS: Final = {
    "invalid_api_key": 401,
    "unauthorized": 401,
    "quota_exceeded": 402,
    "voice_not_found": 404,
    "invalid_output_format": 400,
    "invalid_request": 400,
    "invalid_message": 400,
    "too_many_concurrent_requests": 429,
    "rate_limit_exceeded": 429,
    "system_busy": 429,
}
"""In-band error names (``{"message", "error", "code"}`` before the close) as the HTTP statuses they mean."""

_CONTAINER_MAGIC: Final = (b"ID3", b"RIFF", b"OggS", b"fLaC")


class ElevenLabsWebSocketTextToSpeech:
    """The ``TextToSpeech`` contract over stream-input, plus ``reply()`` for a whole streamed reply."""

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str,
        base_url: str = "",
        model_id: str = "eleven_flash_v2_5",
        language: str = "de",
        first_byte_timeout_s: float = DEFAULT_BUDGETS.tts_first_byte_s,
        total_timeout_s: float = 30.0,
        max_attempts: int = 2,
    ) -> None:
        self._api_key = api_key
        self.voice_id = voice_id
        self.model_id = model_id
        self.language = language
        self.first_byte_timeout_s = first_byte_timeout_s
        self.total_timeout_s = total_timeout_s
        self.max_attempts = max_attempts
        self.name = f"elevenlabs-ws:{model_id}"
        self.url = _socket_url(base_url or DEFAULT_BASE_URL, voice_id, self._query())

    @property
    def cache_key(self) -> str:
        # The same voice, model and format as the HTTP transport: cached phrases stay valid across both.
        return f"elevenlabs:{self.voice_id}:{self.model_id}:{OUTPUT_FORMAT}"

    def _query(self) -> dict[str, str]:
        query = {"model_id": self.model_id, "output_format": OUTPUT_FORMAT}
        if self.model_id in LANGUAGE_CODE_MODELS:
            query["language_code"] = self.language
        return query

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        return stream_with_budget(
            lambda: self._one(text),
            stage="tts",
            first_item_s=self.first_byte_timeout_s,
            idle_s=self.first_byte_timeout_s,
            total_s=self.total_timeout_s,
            max_attempts=self.max_attempts,
        )

    async def _one(self, text: str) -> AsyncIterator[bytes]:
        socket = await self.open_socket()
        try:
            await _send(socket, {"text": _spaced(text), "flush": True})
            await _send(socket, {"text": ""})
            async for chunk in _audio(socket):
                yield chunk
        finally:
            await socket.close()

    async def open_socket(self) -> ClientConnection:
        """Connects and sends the initial message; raises ``ProviderError`` when refused."""
        try:
            socket = await connect(
                self.url,
                additional_headers={"xi-api-key": self._api_key},
                open_timeout=self.first_byte_timeout_s,
                close_timeout=CLOSE_TIMEOUT_S,
                compression=None,  # base64 μ-law hardly compresses; deflate only costs CPU
                max_size=1 << 20,
            )
        except Exception as exc:
            raise _classify(exc) from exc
        try:
            init = {"text": " ", "generation_config": {"chunk_length_schedule": list(CHUNK_LENGTH_SCHEDULE)}}
            await _send(socket, init)
        except BaseException:
            await socket.close()
            raise
        return socket

    def reply(self) -> StreamedReply:
        """One socket for one reply turn: connect now (while the LLM thinks), feed clauses, read audio."""
        return StreamedReply(self)


class StreamedReply:
    """A reply's text fed clause by clause into one socket, its audio read as it is rendered.

    The first audio must come within ``first_byte_timeout_s`` of the first clause, and each later gap while
    text is waiting for audio within the same; while no text is pending (the LLM is slow) nothing is timed.
    ``aclose`` (barge-in, hang-up) closes the socket at once, whatever is still being rendered.
    """

    def __init__(self, tts: ElevenLabsWebSocketTextToSpeech) -> None:
        self._tts = tts
        self._socket: ClientConnection | None = None
        self._opening = asyncio.Lock()
        self._timer: asyncio.Timeout | None = None
        self._total_due = float("inf")
        self._waiting_since: float | None = None
        self._ended = False
        self._heard = 0

    async def start(self) -> None:
        async with self._opening:
            if self._socket is None:
                self._socket = await self._tts.open_socket()

    async def feed(self, text: str) -> None:
        """Sends one clause and asks for it to be rendered now (``flush``): the caller hears it soonest."""
        if not text.strip():
            return
        await self.start()
        assert self._socket is not None
        await _send(self._socket, {"text": _spaced(text), "flush": True})
        self._arm()

    async def end(self) -> None:
        """No more text: the server renders the rest, sends ``isFinal`` and closes."""
        await self.start()
        assert self._socket is not None
        self._ended = True
        await _send(self._socket, {"text": ""})
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        if self._waiting_since is None:
            self._waiting_since = loop.time()
        if self._timer is not None:
            self._timer.reschedule(min(self._waiting_since + self._tts.first_byte_timeout_s, self._total_due))

    async def audio(self) -> AsyncIterator[bytes]:
        """μ-law chunks as they arrive, until ``isFinal``; ``ProviderError`` on any failure or deadline."""
        await self.start()
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        budget = self._tts.first_byte_timeout_s
        total = self._total_due = loop.time() + self._tts.total_timeout_s
        messages = aiter(self._socket)
        while True:
            due = None if self._waiting_since is None else self._waiting_since + budget
            try:
                async with asyncio.timeout(None) as timer:
                    self._timer = timer
                    timer.reschedule(min(due, total) if due is not None else total)
                    message = await anext(messages)
            except TimeoutError:
                raise ProviderError("tts", f"no audio within {budget:.1f} s", retryable=True) from None
            except StopAsyncIteration:
                raise ProviderError(
                    "tts", "socket closed before the reply was complete", retryable=True
                ) from None
            except ConnectionClosed as exc:
                raise _classify(exc) from exc
            finally:
                self._timer = None
            chunk, final = _parse(message)
            if chunk:
                if self._heard == 0 and chunk.startswith(_CONTAINER_MAGIC):
                    raise ProviderError("tts", "expected raw μ-law, got a file container", retryable=False)
                self._heard += len(chunk)
                self._waiting_since = loop.time() if self._ended else None
                yield chunk
            if final:
                if not self._heard:
                    raise ProviderError("tts", "empty audio stream", retryable=True)
                return

    async def aclose(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()


async def _send(socket: ClientConnection, message: dict[str, Any]) -> None:
    try:
        await socket.send(json.dumps(message, ensure_ascii=False))
    except ConnectionClosed as exc:
        raise _classify(exc) from exc


async def _audio(socket: ClientConnection) -> AsyncIterator[bytes]:
    first = True
    while True:
        try:
            message = await socket.recv()
        except ConnectionClosed as exc:
            raise _classify(exc) from exc
        chunk, final = _parse(message)
        if chunk:
            if first and chunk.startswith(_CONTAINER_MAGIC):
                raise ProviderError("tts", "expected raw μ-law, got a file container", retryable=False)
            first = False
            yield chunk
        if final:
            if first:
                raise ProviderError("tts", "empty audio stream", retryable=True)
            return


def _parse(message: str | bytes) -> tuple[bytes, bool]:
    """One server message as (audio, is it the last); an in-band error raises ``ProviderError``."""
    try:
        data = json.loads(message)
        audio = base64.b64decode(data["audio"], validate=True) if data.get("audio") else b""
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise ProviderError("tts", f"malformed message: {type(exc).__name__}", retryable=False) from exc
    if not audio and data.get("error"):
        error = str(data.get("error"))
        status = _ERROR_STATUS.get(error, 500)
        text = f"{error}: {str(data.get('message', ''))[:200]}"
        raise ProviderError("tts", text, retryable=status_retryable(status), status=status)
    return audio, bool(data.get("isFinal"))


def _classify(exc: BaseException) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return ProviderError(
            "tts", f"upgrade refused: HTTP {status}", retryable=status_retryable(status), status=status
        )
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else None
        return ProviderError("tts", f"socket closed mid-stream (code {code})", retryable=True)
    if isinstance(exc, TimeoutError):
        return ProviderError("tts", "socket not open in time", retryable=True)
    if isinstance(exc, InvalidHandshake):
        return ProviderError("tts", f"handshake failed: {type(exc).__name__}", retryable=False)
    if isinstance(exc, OSError):
        return ProviderError("tts", f"connection failed: {type(exc).__name__}", retryable=True)
    return ProviderError("tts", f"unexpected {type(exc).__name__}", retryable=False)


def _spaced(text: str) -> str:
    """The protocol wants every chunk to end with a space, so words of two chunks never run together."""
    return text if text.endswith(" ") else text + " "


def _socket_url(base_url: str, voice_id: str, query: dict[str, str]) -> str:
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    path = f"{parts.path.rstrip('/')}/v1/text-to-speech/{voice_id}/stream-input"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))
