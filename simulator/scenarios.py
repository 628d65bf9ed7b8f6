"""Load scenarios for ``voicebot simulate``: many calls, each a caller that talks, pauses, interrupts or not.

Real-time pacing is the point: every call streams a 20 ms μ-law frame every 20 ms of wall time for as long
as it lasts (speech when the caller talks, μ-law silence otherwise, as Twilio does), and plays the bot's
audio out at 8000 bytes/s. To keep 200 calls in one process cheap, one ``FrameClock`` task sends the frames
of every call (no timer per call), frames are pre-encoded (base64 once per utterance, the JSON by string
template) and waiting never polls faster than 10 times a second.

Scenarios (``SCENARIOS``):

- ``turns``: greeting, then caller utterances with pauses; each reply is listened to until the end.
- ``bargein``: like ``turns``, but every reply is interrupted ``interrupt_after_s`` after its first audio by
  a long utterance; the reply to that interruption is listened to until the end.
- ``silence``: the caller says nothing (the bot reprompts, then says goodbye and hangs up).
- ``dtmf``: after the greeting the caller presses keys, one after each answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from simulator.call import CallRefused, place_call
from simulator.record import Utterance, underruns
from simulator.twilio import FRAME_BYTES, TwilioSimulator

Scenario = Literal["turns", "bargein", "silence", "dtmf"]
SCENARIOS: tuple[Scenario, ...] = ("turns", "bargein", "silence", "dtmf")

FRAME_S = 0.02
RATE = 8000

DEFAULT_UTTERANCES = (
    "Guten Tag, ich habe eine Frage zu meiner letzten Rechnung.",
    "Meine Kundennummer ist vier fünf sechs sieben acht.",
    "Wann haben Sie heute geöffnet?",
)
DEFAULT_INTERRUPTION = "Moment, entschuldigen Sie, ich habe eine ganz andere Frage zu meinem Vertrag."

# The JSON ``wire.media`` produces, as a template: same keys, same order, no spaces.
_MEDIA = (
    '{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
    '"timestamp":"%d","payload":"%s"},"streamSid":"%s"}'
)


# --- caller audio ----------------------------------------------------------------------------------------


def _trim_and_level(samples: npt.NDArray[np.float64], level_db: float | None) -> npt.NDArray[np.float64]:
    """Cuts leading/trailing silence (10 ms windows under -45 dBFS), so the last frame sent is voiced."""
    n = 80
    usable = len(samples) // n * n
    if usable == 0:
        return samples
    windows = samples[:usable].reshape(-1, n)
    levels = 20 * np.log10(np.maximum(np.sqrt(np.mean(np.square(windows), axis=1)), 1e-9) / 32768)
    voiced = np.flatnonzero(levels > -45.0)
    if not len(voiced):
        return samples
    cut = samples[int(voiced[0]) * n : int(voiced[-1] + 1) * n]
    if level_db is None:
        return cut
    active = windows[voiced].ravel()
    rms = float(np.sqrt(np.mean(np.square(active))))
    return cut * (10 ** (level_db / 20) / max(rms / 32768, 1e-9))


def _to_ulaw(samples: npt.NDArray[np.float64]) -> bytes:
    from media.codec import array_to_ulaw

    return array_to_ulaw(np.clip(np.round(samples), -32768, 32767).astype(np.int16))


def speech_ulaw(text: str, *, level_db: float = -20.0) -> bytes:
    """German speech from eSpeak NG (``media.espeak``), trimmed to its voiced part, at ``level_db`` dBFS."""
    from media.espeak import synthesize_pcm16

    pcm = np.frombuffer(synthesize_pcm16(text), dtype="<i2").astype(np.float64)
    return _to_ulaw(_trim_and_level(pcm, level_db))


class WavError(ValueError):
    pass


def load_wav(path: Path, *, level_db: float | None = None) -> bytes:
    """A WAV file (PCM 8/16/24/32-bit, float32 or μ-law; any rate; channels mixed down) as 8 kHz μ-law,
    trimmed to its voiced part so that response latency counts from the last voiced frame."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    body: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", chunk[:8])
            bits = struct.unpack("<H", chunk[14:16])[0]
            if tag == 0xFFFE and len(chunk) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the GUID
                tag = struct.unpack("<H", chunk[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise WavError(f"{path}: no fmt or data chunk")
    tag, channels, rate, bits = fmt
    samples: npt.NDArray[np.float64]
    if tag == 7 and bits == 8:
        from media.codec import ulaw_to_array

        samples = ulaw_to_array(body).astype(np.float64)
    elif tag == 1 and bits == 16:
        samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float64)
    elif tag == 1 and bits == 8:
        samples = (np.frombuffer(body, dtype=np.uint8).astype(np.float64) - 128) * 256
    elif tag == 1 and bits == 24:
        raw = np.frombuffer(body[: len(body) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = (np.where(ints & 0x800000, ints - (1 << 24), ints) / 256).astype(np.float64)
    elif tag == 1 and bits == 32:
        samples = np.frombuffer(body[: len(body) // 4 * 4], dtype="<i4").astype(np.float64) / 65536
    elif tag == 3 and bits == 32:
        samples = np.frombuffer(body[: len(body) // 4 * 4], dtype="<f4").astype(np.float64) * 32767
    else:
        raise WavError(f"{path}: unsupported WAV format (tag {tag}, {bits} bits)")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate != RATE:
        import soxr

        samples = np.asarray(soxr.resample(samples, rate, RATE), dtype=np.float64)
    return _to_ulaw(_trim_and_level(samples, level_db))


def _payloads(ulaw: bytes) -> list[str]:
    """Base64 of each 20 ms frame (the last padded with silence, as Twilio never sends a partial frame)."""
    out = []
    for i in range(0, len(ulaw), FRAME_BYTES):
        frame = ulaw[i : i + FRAME_BYTES]
        out.append(base64.b64encode(frame + b"\xff" * (FRAME_BYTES - len(frame))).decode("ascii"))
    return out


SILENT_PAYLOAD = base64.b64encode(b"\xff" * FRAME_BYTES).decode("ascii")


@dataclass(frozen=True, slots=True)
class Speech:
    """Caller audio ready to stream: the μ-law and its frames pre-encoded."""

    ulaw: bytes
    payloads: tuple[str, ...]

    @classmethod
    def of(cls, ulaw: bytes) -> Speech:
        return cls(ulaw, tuple(_payloads(ulaw)))

    @property
    def seconds(self) -> float:
        return len(self.payloads) * FRAME_S


# --- one timer for all calls ----------------------------------------------------------------------------


class FrameClock:
    """Sends the next 20 ms frame of every registered call when it falls due, from a single task.

    Each call keeps its own phase (its frames are due every 20 ms from when it joined); the task wakes every
    ``tick_s`` and sends all that are due, catching up in a burst if the loop was late, so that the audio a
    call has sent always equals the wall time it has been connected. ``lag`` collects how late frames went
    out: the simulator's own health, reported next to the bot's figures.
    """

    def __init__(self, tick_s: float = 0.005) -> None:
        self._tick = tick_s
        self._callers: list[Caller] = []
        self._task: asyncio.Task[None] | None = None
        self.lag: list[float] = []
        self._lag_every = 0

    def add(self, caller: Caller) -> None:
        caller.next_frame_at = time.monotonic()
        self._callers.append(caller)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="frame-clock")

    def remove(self, caller: Caller) -> None:
        with contextlib.suppress(ValueError):
            self._callers.remove(caller)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            for caller in list(self._callers):
                while caller.next_frame_at <= now:
                    self._lag_every += 1
                    if self._lag_every % 10 == 0 and len(self.lag) < 200_000:
                        self.lag.append(now - caller.next_frame_at)
                    caller.next_frame_at += FRAME_S
                    if not await caller.send_next_frame():
                        self.remove(caller)
                        break
            next_tick = max(next_tick + self._tick, time.monotonic())
            await asyncio.sleep(next_tick - time.monotonic())


@dataclass(slots=True)
class _Piece:
    payloads: Sequence[str]
    done: asyncio.Future[None]
    utterance: Utterance | None = None
    index: int = 0


class Caller:
    """Drives one connected ``TwilioSimulator``: its frames are sent by a shared ``FrameClock``, continuously,
    in real time (the simulator's own reader, playout and mark echo are used as they are)."""

    def __init__(self, sim: TwilioSimulator, frame_clock: FrameClock) -> None:
        self.sim = sim
        self.record = sim.record
        self.playout = sim.playout
        self._frame_clock = frame_clock
        self._pieces: deque[_Piece] = deque()
        self.next_frame_at = 0.0
        self.dtmf_latencies: list[float] = []
        self.missing: list[str] = []
        """What the caller waited for in vain (``no reply``, ``no clear``, ...)."""

    @property
    def closed(self) -> bool:
        return self.sim.closed

    def begin_streaming(self) -> None:
        self._frame_clock.add(self)

    def stop_streaming(self) -> None:
        self._frame_clock.remove(self)
        for piece in self._pieces:
            if not piece.done.done():
                piece.done.set_result(None)
        self._pieces.clear()

    async def send_next_frame(self) -> bool:
        """Called by the clock: the next frame of speech, else silence. False once the call is over."""
        sim = self.sim
        ws = sim._ws  # the simulator's own socket, sequence and lock: numbering stays in one place
        if sim.closed or ws is None or not sim._started:
            self.stop_streaming()
            return False
        piece = self._pieces[0] if self._pieces else None
        payload = SILENT_PAYLOAD if piece is None else piece.payloads[piece.index]
        async with sim._send_lock:
            sim._seq += 1
            sim._chunk += 1
            text = _MEDIA % (sim._seq, sim._chunk, (sim._chunk - 1) * 20, payload, sim.stream_sid)
            try:
                await ws.send(text)
            except Exception:  # noqa: BLE001 - a closed socket ends the stream; the reader records why
                return False
        self.record.frames_sent += 1
        if piece is not None:
            now = time.monotonic()
            utt = piece.utterance
            if utt is not None and piece.index == 0:
                # A frame leaves once its 20 ms were captured (as Twilio sends them): the caller started
                # talking one frame before the first voiced frame went out, and stopped as the last one went.
                utt.started_at = now - FRAME_S
                utt.over_bot_audio = self.playout.playing
                self.record.utterances.append(utt)
            piece.index += 1
            if piece.index >= len(piece.payloads):
                if utt is not None:
                    utt.ended_at = now  # when the last voiced frame left: the caller stopped talking
                self._pieces.popleft()
                if not piece.done.done():
                    piece.done.set_result(None)
        return True

    async def say(self, speech: Speech) -> Utterance:
        """Streams ``speech`` in real time; returns its record once the last frame has been sent."""
        utt = Utterance(started_at=0.0)
        await self._queue(_Piece(speech.payloads, asyncio.get_running_loop().create_future(), utt))
        return utt

    async def pause(self, seconds: float) -> None:
        """Silence for ``seconds`` (the clock sends silence anyway; this waits for that many frames)."""
        frames = max(1, round(seconds / FRAME_S))
        await self._queue(_Piece([SILENT_PAYLOAD] * frames, asyncio.get_running_loop().create_future()))

    async def _queue(self, piece: _Piece) -> None:
        if self.closed:
            return
        self._pieces.append(piece)
        await piece.done

    async def until(self, predicate: Callable[[], bool], timeout_s: float, *, poll_s: float = 0.1) -> bool:
        """Waits until ``predicate()`` (checked on every message from the bot, and every ``poll_s``)."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed = self.sim._changed  # set by the simulator on every message and every echo
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(poll_s, remaining))
        return True

    async def listen_to_end(self, quiet_s: float, timeout_s: float) -> bool:
        """Listens until the bot has finished talking: everything played, every mark echoed, then nothing new
        for ``quiet_s``. False on timeout or when the call ended."""
        deadline = time.monotonic() + timeout_s
        while not self.closed:
            idle = await self.until(
                lambda: self.closed or (not self.playout.playing and not self.playout.pending_marks),
                deadline - time.monotonic(),
            )
            if not idle or self.closed:
                return False
            seen = self.record.audio_messages
            await self.until(lambda: self.closed or self.record.audio_messages != seen, quiet_s)  # noqa: B023
            if self.record.audio_messages == seen:
                return not self.closed
        return False

    async def press(self, digit: str) -> float:
        """Sends a DTMF digit; returns when it was sent."""
        await self.sim.send_dtmf(digit)
        return time.monotonic()


# --- scenarios -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    scenario: Scenario = "turns"
    utterances: tuple[Speech, ...] = ()
    interruption: Speech | None = None
    pause_s: float = 1.0
    """Silence after the bot has finished a reply, before the caller speaks again."""
    interrupt_after_s: float = 1.0
    """``bargein``: how far into the reply the caller starts talking."""
    digits: str = "0"
    max_turns: int | None = None
    reply_timeout_s: float = 15.0


async def _greeting(caller: Caller, cfg: ScenarioConfig, deadline: float) -> bool:
    if not await caller.until(lambda: caller.closed or caller.record.audio_messages > 0, 10.0):
        caller.missing.append("no greeting")
        return False
    return await caller.listen_to_end(cfg.pause_s, max(0.1, deadline - time.monotonic()))


async def _reply_to(caller: Caller, utt: Utterance, cfg: ScenarioConfig) -> bool:
    ok = await caller.until(lambda: caller.closed or utt.first_audio_at is not None, cfg.reply_timeout_s)
    if utt.first_audio_at is None and not caller.closed:
        caller.missing.append("no reply")
    return ok and not caller.closed


async def run_scenario(caller: Caller, cfg: ScenarioConfig, deadline: float) -> None:
    """Plays ``cfg.scenario`` on a started call until ``deadline`` (monotonic) or its natural end."""
    if cfg.scenario == "silence":
        await caller.until(lambda: caller.closed, max(0.0, deadline - time.monotonic()), poll_s=0.5)
        return
    if not await _greeting(caller, cfg, deadline):
        return
    utterances = cfg.utterances
    for turn in itertools.count():
        if caller.closed or time.monotonic() >= deadline:
            return
        if cfg.max_turns is not None and turn >= cfg.max_turns:
            return
        if cfg.scenario == "dtmf":
            digit = cfg.digits[turn % len(cfg.digits)]
            sent = await caller.press(digit)
            seen = caller.record.audio_messages
            more = lambda: caller.closed or caller.record.audio_messages > seen  # noqa: B023, E731
            if not await caller.until(more, 10.0):
                caller.missing.append(f"no answer to dtmf {digit}")
                return
            if caller.record.audio_messages > seen:
                caller.dtmf_latencies.append(time.monotonic() - sent)
        else:
            utt = await caller.say(utterances[turn % len(utterances)])
            if not await _reply_to(caller, utt, cfg):
                return
            if cfg.scenario == "bargein" and cfg.interruption is not None:
                wait = cfg.interrupt_after_s - (time.monotonic() - (utt.first_audio_at or 0.0))
                if wait > 0:
                    await caller.pause(wait)
                barge = await caller.say(cfg.interruption)
                if not barge.over_bot_audio:
                    caller.missing.append("reply over before the barge-in")
                elif barge.clear_at is None and not await caller.until(
                    lambda: caller.closed or barge.clear_at is not None,  # noqa: B023
                    5.0,
                ):
                    caller.missing.append("no clear")
                if not await _reply_to(caller, barge, cfg):
                    return
        if not await caller.listen_to_end(cfg.pause_s, cfg.reply_timeout_s + 60):
            return


# --- many calls ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class CallResult:
    index: int
    scenario: str
    call_sid: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    error: str | None = None
    response_latencies: list[float] = field(default_factory=list)
    barge_in_reactions: list[float] = field(default_factory=list)
    dtmf_latencies: list[float] = field(default_factory=list)
    underruns: list[float] = field(default_factory=list)
    """Seconds of each underrun."""
    violations: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    frames_sent: int = 0
    audio_bytes: int = 0
    marks: int = 0
    clears: int = 0
    closed_by_bot: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "scenario": self.scenario,
            "call_sid": self.call_sid,
            "duration_s": round(self.ended_at - self.started_at, 3),
            "error": self.error,
            "response_latency_ms": [round(x * 1000, 1) for x in self.response_latencies],
            "barge_in_reaction_ms": [round(x * 1000, 1) for x in self.barge_in_reactions],
            "dtmf_latency_ms": [round(x * 1000, 1) for x in self.dtmf_latencies],
            "underrun_ms": [round(x * 1000, 1) for x in self.underruns],
            "protocol_errors": self.violations,
            "missing": self.missing,
            "frames_sent": self.frames_sent,
            "audio_bytes": self.audio_bytes,
            "marks": self.marks,
            "clears": self.clears,
            "closed_by_bot": self.closed_by_bot,
        }


def collect(result: CallResult, caller: Caller) -> None:
    rec = caller.record
    result.call_sid = caller.sim.call_sid
    result.response_latencies = rec.response_latencies()
    result.barge_in_reactions = rec.barge_in_reactions()
    result.dtmf_latencies = list(caller.dtmf_latencies)
    result.underruns = [g.seconds for g in underruns(caller.playout.gaps, rec.utterances)]
    result.violations = list(rec.violations)
    result.missing = list(caller.missing)
    result.frames_sent = rec.frames_sent
    result.audio_bytes = rec.audio_bytes
    result.marks = len(rec.marks)
    result.clears = len(rec.clears)
    result.closed_by_bot = rec.closed_by_bot


@dataclass(frozen=True, slots=True)
class LoadConfig:
    base_url: str
    public_url: str | None = None
    auth_token: str | None = None
    concurrency: int = 1
    ramp_up_s: float = 0.0
    duration_s: float = 30.0
    """Every call ends at ramp-up + duration after the start (sooner if its scenario ends)."""
    total_calls: int | None = None
    """Place this many calls in all (back to back in each slot) instead of one per slot."""
    max_call_s: float | None = None
    """Hang up each call this long after it was answered."""
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)


@dataclass(slots=True)
class LoadProgress:
    started_at: float
    placed: int = 0
    active: int = 0
    done: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    reactions: list[float] = field(default_factory=list)
    underruns: int = 0
    violations: int = 0
    live: set[Caller] = field(default_factory=set)
    """Calls in progress, whose figures so far count in the progress line too."""

    def response_latencies(self) -> list[float]:
        return self.latencies + [x for c in self.live for x in c.record.response_latencies()]

    def barge_in_reactions(self) -> list[float]:
        return self.reactions + [x for c in self.live for x in c.record.barge_in_reactions()]


async def run_load(
    cfg: LoadConfig,
    *,
    on_call_done: Callable[[CallResult], None] | None = None,
    progress: LoadProgress | None = None,
    frame_clock: FrameClock | None = None,
) -> list[CallResult]:
    """Runs ``cfg.concurrency`` call slots (started evenly over the ramp-up); returns every call's result."""
    t0 = time.monotonic()
    deadline = t0 + cfg.ramp_up_s + cfg.duration_s
    clock = frame_clock or FrameClock()
    prog = progress or LoadProgress(started_at=t0)
    results: list[CallResult] = []
    counter = itertools.count()

    async def one_call(index: int) -> CallResult:
        result = CallResult(index=index, scenario=cfg.scenario.scenario, started_at=time.monotonic())
        results.append(result)
        prog.placed += 1
        prog.active += 1
        call_deadline = deadline if cfg.total_calls is None else float("inf")
        if cfg.max_call_s is not None:
            call_deadline = min(call_deadline, time.monotonic() + cfg.max_call_s)
        caller: Caller | None = None
        try:
            async with place_call(cfg.base_url, public_url=cfg.public_url, auth_token=cfg.auth_token) as sim:
                caller = Caller(sim, clock)
                prog.live.add(caller)
                caller.begin_streaming()
                try:
                    timeout = max(0.0, call_deadline - time.monotonic()) + 0.001
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout if timeout != float("inf") else None):
                            await run_scenario(caller, cfg.scenario, call_deadline)
                finally:
                    caller.stop_streaming()
        except CallRefused as exc:
            result.error = f"refused: {exc}"
        except Exception as exc:  # noqa: BLE001 - one failed call is a result, not the end of the run
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            result.ended_at = time.monotonic()
            if caller is not None:
                prog.live.discard(caller)
                collect(result, caller)
            prog.active -= 1
            prog.done += 1
            prog.failed += result.error is not None
            prog.latencies += result.response_latencies
            prog.reactions += result.barge_in_reactions
            prog.underruns += len(result.underruns)
            prog.violations += len(result.violations)
            if on_call_done is not None:
                on_call_done(result)
        return result

    async def slot(n: int) -> None:
        if cfg.concurrency > 1:
            await asyncio.sleep(cfg.ramp_up_s * n / cfg.concurrency)
        while True:
            index = next(counter)
            if cfg.total_calls is not None and index >= cfg.total_calls:
                return
            if (await one_call(index)).error is not None:
                await asyncio.sleep(0.5)  # a refused call: do not hammer the bot in a tight loop
            if cfg.total_calls is None and time.monotonic() >= deadline - 1.0:
                return

    try:
        async with asyncio.TaskGroup() as group:
            for n in range(cfg.concurrency):
                group.create_task(slot(n))
    finally:
        if frame_clock is None:
            await clock.close()
    return sorted(results, key=lambda r: r.index)
