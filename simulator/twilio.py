"""``TwilioSimulator``: plays Twilio's part of one call over a real WebSocket to a running bot.

It sends what Twilio sends (``connected``, ``start``, 20 ms μ-law frames, DTMF, ``stop``), plays the bot's
audio out at 8000 bytes/s, echoes each mark when playback passes it, and on ``clear`` drops its buffer and
echoes every pending mark at once. Everything observed is timestamped in ``record``.

Checks it makes on the bot: outbound messages must be JSON ``media``/``mark``/``clear`` for this stream,
payloads base64 without a WAV header, nothing before ``start``. Breaches land in ``record.violations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simulator import wire
from simulator.playout import Playout, SimClock
from simulator.record import CallRecord, Echo, Utterance

FRAME_BYTES = 160
"""20 ms of 8 kHz μ-law, the frame size Twilio sends."""
SILENCE = b"\xff"


class ConnectRejected(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"the bot refused the WebSocket upgrade with HTTP {status}")
        self.status = status


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class TwilioSimulator:
    def __init__(
        self,
        ws_url: str,
        *,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        account_sid: str | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        auth_token: str | None = None,
        signed_url: str | None = None,
    ) -> None:
        """``signed_url`` is the ``wss://`` URL Twilio signs (the TwiML's ``<Stream url>``); defaults to
        ``ws_url``. Without ``auth_token`` no ``X-Twilio-Signature`` is sent."""
        self.ws_url = ws_url
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.account_sid = account_sid or new_sid("AC")
        self.custom_parameters = dict(custom_parameters or {})
        self._auth_token = auth_token
        self._signed_url = signed_url or ws_url
        self.clock = SimClock()
        self.playout = Playout(self.clock)
        self.record = CallRecord()
        self._ws: ClientConnection | None = None
        self._seq = 0
        self._chunk = 0
        self._started = False
        self._closing = False
        self._reader_done = False
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> TwilioSimulator:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.hang_up()

    async def connect(self) -> None:
        headers = {}
        if self._auth_token:
            signature = RequestValidator(self._auth_token).compute_signature(self._signed_url, {})
            headers["X-Twilio-Signature"] = signature
        try:
            self._ws = await connect(self.ws_url, additional_headers=headers, max_size=1 << 20)
        except InvalidStatus as exc:
            raise ConnectRejected(exc.response.status_code) from None
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._echo_loop())]

    async def start(self) -> None:
        """``connected`` then ``start`` with the custom parameters (the stream token among them)."""
        await self.send_raw(wire.connected())
        await self._send(
            lambda seq: wire.start(
                seq,
                stream_sid=self.stream_sid,
                call_sid=self.call_sid,
                account_sid=self.account_sid,
                custom_parameters=self.custom_parameters,
            )
        )
        self._started = True

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then Twilio closes the socket."""
        if self._started and not self.closed:
            await self._send(
                lambda seq: wire.stop(
                    seq, stream_sid=self.stream_sid, call_sid=self.call_sid, account_sid=self.account_sid
                )
            )
        await self.drop()

    async def drop(self) -> None:
        """The network fails: the socket closes without ``stop``."""
        if not self.closed:
            self._closing = True
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @property
    def closed(self) -> bool:
        """The socket is closed and everything the bot sent before closing has been recorded."""
        return self._ws is None or self._reader_done

    # --- caller → bot --------------------------------------------------------------------------------

    async def send_audio(self, ulaw: bytes, *, realtime: bool = False) -> None:
        """Sends 20 ms frames; ``realtime`` paces them on the wall clock, else the clock is fast-forwarded."""
        t0 = time.monotonic()
        for i in range(0, len(ulaw), FRAME_BYTES):
            frame = ulaw[i : i + FRAME_BYTES]
            if self.closed:
                return
            self._chunk += 1
            chunk, stamp = self._chunk, (self._chunk - 1) * 20
            await self._send(
                functools.partial(
                    wire.media, stream_sid=self.stream_sid, chunk=chunk, timestamp_ms=stamp, ulaw=frame
                )
            )
            self.record.frames_sent += 1
            if realtime:
                await asyncio.sleep(max(0.0, t0 + (i + FRAME_BYTES) / 8000 - time.monotonic()))
            else:
                self.clock.skip(len(frame) / 8000)
                await self._echo_due()

    async def send_silence(self, ms: int, *, realtime: bool = False) -> None:
        await self.send_audio(SILENCE * (8 * ms), realtime=realtime)

    async def send_utterance(self, ulaw: bytes, *, realtime: bool = False) -> Utterance:
        """Caller speech; records when it ended (response latency) and whether it talked over the bot."""
        utt = Utterance(started_at=time.monotonic(), over_bot_audio=self.playout.playing)
        self.record.utterances.append(utt)
        await self.send_audio(ulaw, realtime=realtime)
        utt.ended_at = time.monotonic()
        return utt

    async def send_dtmf(self, digit: str) -> None:
        await self._send(lambda seq: wire.dtmf(seq, stream_sid=self.stream_sid, digit=digit))
        self.record.dtmf_sent.append(digit)

    async def send_raw(self, text: str | bytes) -> None:
        """Anything at all (bytes go out as a binary frame), unnumbered: for malformed-input tests."""
        if self._ws is None:
            raise RuntimeError("not connected")
        async with self._send_lock:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(text)

    def skip_sequence(self, n: int = 1) -> None:
        """Pretend ``n`` messages were lost on the way."""
        self._seq += n

    # --- waiting ---------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wakes on every change seen here, and polls every 10 ms for conditions on the bot's side."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.01)

    async def wait_for_audio(self, nbytes: int = 1, timeout_s: float = 5.0) -> None:
        await self.wait_for(lambda: self.record.audio_bytes >= nbytes, timeout_s)

    async def wait_for_echo(self, name: str, timeout_s: float = 5.0) -> Echo:
        await self.wait_for(lambda: self.record.echoed(name) is not None, timeout_s)
        echo = self.record.echoed(name)
        assert echo is not None
        return echo

    async def wait_for_clear(self, count: int = 1, timeout_s: float = 5.0) -> None:
        await self.wait_for(lambda: len(self.record.clears) >= count, timeout_s)

    async def wait_closed(self, timeout_s: float = 5.0) -> None:
        await self.wait_for(lambda: self.closed, timeout_s)

    async def play_out(self, *, realtime: bool = False, timeout_s: float = 10.0) -> None:
        """Lets everything queued play (fast-forwarded unless ``realtime``), echoing the marks."""
        if not realtime:
            self.clock.skip(self.playout.drain_at - self.clock.now())
            await self._echo_due()
        await self.wait_for(lambda: not self.playout.pending_marks and not self.playout.playing, timeout_s)

    def heard_audio(self) -> bytes:
        """The bot's audio the caller has heard so far: played, and not dropped by a ``clear``."""
        self.playout.settle()
        return bytes(self.playout.heard)

    # --- bot → caller ----------------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    self.record.violations.append("binary frame")
                else:
                    await self._on_bot_message(message)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.record.close_code = self._ws.close_code
            self.record.closed_by_bot = not self._closing
            self._reader_done = True
            self._changed.set()

    async def _on_bot_message(self, text: str) -> None:
        now = time.monotonic()
        try:
            msg = wire.parse_outbound(text, stream_sid=self.stream_sid)
        except wire.WireViolation as exc:
            self.record.violations.append(str(exc))
            return
        if not self._started:
            self.record.violations.append(f"{type(msg).__name__} before start")
        if isinstance(msg, wire.BotMedia):
            self.playout.add_audio(msg.ulaw)
            self.record.audio_messages += 1
            self.record.audio_bytes += len(msg.ulaw)
            if self.record.first_audio_at is None:
                self.record.first_audio_at = now
            for utt in self.record.utterances:
                if utt.ended_at is not None and utt.first_audio_at is None:
                    utt.first_audio_at = now
        elif isinstance(msg, wire.BotMark):
            self.playout.add_mark(msg.name)
            self.record.marks.append((now, msg.name))
            self._wake.set()
        else:
            self.record.clears.append(now)
            for utt in self.record.utterances:
                if utt.clear_at is None:
                    utt.clear_at = now
            for mark in self.playout.clear():
                await self._echo(mark.name, flushed=True)

    async def _echo_loop(self) -> None:
        while True:
            await self._echo_due()
            due = self.playout.next_due
            self._wake.clear()
            delay = None if due is None else max(0.0, due - self.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _echo_due(self) -> None:
        for mark in self.playout.due_marks():
            await self._echo(mark.name, flushed=False)

    async def _echo(self, name: str, *, flushed: bool) -> None:
        await self._send(lambda seq: wire.mark(seq, stream_sid=self.stream_sid, name=name))
        self.record.echoes.append(Echo(name=name, at=time.monotonic(), flushed=flushed))
        self._changed.set()

    async def _send(self, build: Callable[[int], str]) -> None:
        """Numbers and sends under one lock, so sequence numbers go out in order."""
        if self._ws is None:
            raise RuntimeError("not connected")
        async with self._send_lock:
            self._seq += 1
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(build(self._seq))
