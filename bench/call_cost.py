"""Where a call's CPU goes, from parts measured one by one, and how many calls that leaves one core.

Run: ``python -m bench.call_cost`` (``--turn-every 4,6,8``). Not a test: it prints a table with the CPU model.
``bench.fleet`` measures whole calls; this splits one into the two costs that grow with it and prices each
on this machine, so a capacity target can be checked against what the parts alone need:

- per caller frame (50 a second for the whole call): the media socket's stack (``bench.ws_stack``'s direct
  path, 200 sockets) plus the call's own work on the frame (``inbound_audio`` and the turn detector: VAD,
  echo gate, levels) on real German speech, with the bot talking (echo reference fed) and without;
- per caller turn: the provider requests through the real SDK clients against ``voicebot fakes`` with no
  latency (the batch transcription of a 2.5 s utterance, one streamed reply, its two sentences as speech),
  built by ``web.providers`` exactly as the server builds them.

What the model leaves out (outbound audio, timers, the state machine, events, Redis and PostgreSQL) is what
``bench.fleet``'s whole-call figure has on top; the README compares both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import numpy as np

from bench.processes import Placement, _free_port, _voicebot
from bench.run import machine
from bench.ws_stack import measure
from fakes.behaviour import DEFAULT_REPLY
from media.codec import pcm16_to_ulaw
from media.espeak import synthesize_pcm16
from media.turns import TurnConfig, TurnDetector
from media.twilio_protocol import inbound_audio
from simulator.wire import media

FRAME_BYTES = 160
FRAMES_PER_S = 50
TARGET_CALLS = 200
HEADROOM = 0.70
CALLER = "Ich möchte bitte meinen Zählerstand durchgeben, die Zählernummer ist vier sieben elf."
BOT = "Gerne helfe ich Ihnen dabei. Nennen Sie mir bitte Ihre Kundennummer, dann schaue ich sofort nach."


@dataclass(frozen=True, slots=True)
class FrameCost:
    socket_us: float
    quiet_us: float
    """Parse and detector per frame while the caller talks and the bot is silent."""
    talking_us: float
    """The same while the bot talks to a listening caller: the echo gate also tracks what was sent."""


def frame_work_us(bot_talking: bool, seconds: float = 60.0) -> float:
    """CPU µs per caller frame of the call's own work: the frame checked, then pushed through the detector.

    Bot silent: the caller speaks (German, 1 s pauses between utterances). Bot talking: the caller listens,
    a quiet line (about -60 dBFS of noise) while the bot's reference is fed in its 100 ms chunks, as in a
    call where the bot answers at length.
    """
    rng = np.random.default_rng(7)
    if bot_talking:
        noise = rng.normal(0, 30, 8000 * 3).clip(-32768, 32767).astype("<i2").tobytes()
        audio = pcm16_to_ulaw(noise)
    else:
        audio = pcm16_to_ulaw(synthesize_pcm16(CALLER)) + b"\xff" * 8000
    bot = pcm16_to_ulaw(synthesize_pcm16(BOT, pitch=80))
    frames = [audio[i : i + FRAME_BYTES] for i in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES)]
    count = int(seconds * FRAMES_PER_S)
    sid = "MZ" + "0" * 32
    texts = [
        media(n + 1, stream_sid=sid, chunk=n + 1, timestamp_ms=20 * n, ulaw=frames[n % len(frames)])
        for n in range(count)
    ]
    chunk = 800  # the playout's 100 ms chunks, one per five caller frames
    detector = TurnDetector(TurnConfig())
    start = time.process_time()
    for n, text in enumerate(texts):
        if bot_talking and n % 5 == 0:
            at = (n // 5 * chunk) % max(1, len(bot) - chunk)
            detector.play_reference(bot[at : at + chunk])
        frame = inbound_audio(text)
        assert frame is not None
        detector.push(frame[2])
    return (time.process_time() - start) / count * 1e6


def frame_cost(sockets: int, seconds: float) -> FrameCost:
    _count, _cpu, socket_us = measure("direct", "", sockets, seconds)
    return FrameCost(socket_us, frame_work_us(False), frame_work_us(True))


async def _per_request(fn: Callable[[], Awaitable[None]], n: int) -> float:
    for _ in range(5):  # connections opened, caches warm
        await fn()
    start = time.process_time()
    for _ in range(n):
        await fn()
    return (time.process_time() - start) / n * 1000


async def turn_costs(n: int, url: str) -> dict[str, float]:
    """CPU ms per request of each provider call a caller's turn makes, through the server's own adapters."""
    from pydantic import SecretStr

    from dialogue.llm import Message
    from media.speech import Utterance
    from web.providers import build_providers
    from web.settings import Settings

    settings = Settings(
        openai_api_key=SecretStr("sk-bench"),
        openai_base_url=f"{url}/v1",
        elevenlabs_api_key=SecretStr("el-bench"),
        elevenlabs_base_url=url,
        stt_provider="openai",
        llm_provider="openai",
        tts_provider="elevenlabs",
        stt_mode="batch",
    )
    providers = build_providers(settings)
    stt, llm, tts = providers.stt, providers.llm, providers.tts
    assert stt is not None
    assert llm is not None
    assert tts is not None
    utterance = Utterance(synthesize_pcm16(CALLER))
    sentences = DEFAULT_REPLY.split(". ", 1)
    messages = [Message("system", "Du bist ein Telefonassistent."), Message("user", CALLER)]

    async def transcribe() -> None:
        await stt.transcribe(utterance)

    async def reply() -> None:
        async for _part in llm.stream_reply(messages, []):
            pass

    async def speak() -> None:
        for sentence in sentences:
            async for _chunk in tts.synthesize(sentence):
                pass

    try:
        return {
            "STT (batch, 2.5 s)": await _per_request(transcribe, n),
            "LLM reply (streamed)": await _per_request(reply, n),
            f"TTS ({len(sentences)} sentences)": await _per_request(speak, n),
        }
    finally:
        await providers.aclose()


def _start_fakes() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = _voicebot("fakes", "--port", str(port), "--stt-ms", "0", "--llm-ms", "0", "--tts-ms", "0")
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the fakes did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=TARGET_CALLS, help="media sockets for the socket cost")
    parser.add_argument("--seconds", type=float, default=8.0, help="steady window of the socket measurement")
    parser.add_argument("--requests", type=int, default=40, help="turns timed per provider call")
    parser.add_argument(
        "--turn-every", default="4,6,8", help="seconds between a caller's turns, one row each"
    )
    parser.add_argument("--bot-talk", type=float, default=0.5, help="share of the call the bot talks")
    args = parser.parse_args(argv)

    cpus = os.sched_getaffinity(0)
    try:
        frames = frame_cost(args.sockets, args.seconds)
        placement = Placement.split()
        placement.pin_server(os.getpid())  # the adapters as the server runs them: alone on their core
        fakes, url = _start_fakes()
        placement.pin_load(fakes.pid)
        try:
            turn = asyncio.run(turn_costs(args.requests, url))
        finally:
            fakes.terminate()
            fakes.wait(10)
    finally:
        os.sched_setaffinity(0, cpus)

    work_us = frames.quiet_us * (1 - args.bot_talk) + frames.talking_us * args.bot_talk
    frame_ms = (frames.socket_us + work_us) * FRAMES_PER_S / 1000
    turn_ms = sum(turn.values())
    budget = HEADROOM * 1000 / TARGET_CALLS
    print(f"machine: {machine()}; {placement.describe()}")
    print(
        f"per caller frame, µs CPU: socket stack {frames.socket_us:.1f} ({args.sockets} sockets), "
        f"call's work {frames.quiet_us:.1f} bot silent / {frames.talking_us:.1f} bot talking"
    )
    print(
        f"per caller frame at {args.bot_talk:.0%} bot talk: {frames.socket_us + work_us:.1f} µs "
        f"= {frame_ms:.2f} ms per call-second (50 frames)"
    )
    for name, ms in turn.items():
        print(f"per turn, {name:<24} {ms:6.2f} ms CPU")
    print(f"per turn, together                {turn_ms:6.2f} ms CPU")
    print()
    print(f"{TARGET_CALLS} calls at ≤ {HEADROOM:.0%} of a core leave {budget:.2f} ms per call-second")
    head = f"{'turn every':>10} | {'frames':>6} {'turns':>6} {'model':>6} ms/call-s"
    print(f"{head} | calls at {HEADROOM:.0%} | parts at {TARGET_CALLS} calls")
    for every in (float(s) for s in args.turn_every.split(",")):
        total = frame_ms + turn_ms / every
        print(
            f"{every:>9.0f}s | {frame_ms:6.2f} {turn_ms / every:6.2f} {total:6.2f}           | "
            f"{HEADROOM * 1000 / total:>11.0f} | {total * TARGET_CALLS / 10:>8.0f} % of a core"
        )
    print(
        "model = frames + turns only; bench.fleet's whole calls add outbound audio, timers, events, "
        "Redis and PostgreSQL."
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
