"""ElevenLabs over HTTP per sentence against the stream-input WebSocket: first audio, whole reply, CPU.

Run from the repository root: ``python -m bench.tts_transport`` (``--replies 40 --concurrency 4``; the smoke
size is ``--replies 4 --concurrency 2 --warmup 0``). Not a test: it prints a table.

The fakes run in their own process (``voicebot fakes``) with the same TTS latency for both transports: the
first audio ``--tts-ms`` after a generation is asked for (150 ms), then 100 ms of audio every
``--tts-chunk-ms`` (20 ms, faster than real time as ElevenLabs' Flash is). This process plays the bot's side:
an LLM written here streams each German reply (2–3 sentences) token by token, ``--llm-ms`` to the first token
(350 ms) and ``--token-ms`` per token after it (20 ms, about 4 characters each), through the turn runner's
``SentenceSplitter`` into the adapter under test, all on the real SDK or a real socket.

Modes:
- ``http/sentence``: today's path, the HTTP stream per sentence; a sentence's audio is read to its end before
  the next sentence is asked for, as the turn runner does;
- ``ws/sentence``: ``ELEVENLABS_TRANSPORT=ws`` as the session uses it now, one socket per sentence;
- ``http/clause``: the HTTP stream per piece, the first piece a clause (``first_clause_words=6``);
- ``ws/stream``: one socket per reply, opened when the LLM is asked (the handshake hides behind its
  latency), every clause fed with ``flush`` as soon as the splitter has it, audio read concurrently.

Columns: first audio after the LLM was asked (p50/p95), the whole reply until its last audio byte (p50/p95),
gaps: the silence a caller would hear inside the reply if its audio were played in real time as it arrived
(p50/p95; the only way a transport's speed is audible after the first audio), CPU milliseconds per reply
in this process (SDK or socket, parsing, splitting; the fakes are elsewhere).
Loopback has no round trip, so the handshake a real WebSocket pays per socket (TCP + TLS, ~2–3 RTT) is not
in these figures; the HTTP client keeps its connections alive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import structlog
from elevenlabs.client import AsyncElevenLabs

from bench.processes import _free_port, _voicebot
from bench.run import machine
from dialogue.sentences import SentenceSplitter
from media.speech import TextToSpeech
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from simulator.report import percentile

REPLIES = (
    "Gerne helfe ich Ihnen dabei. Nennen Sie mir bitte Ihre Kundennummer, dann schaue ich sofort nach.",
    "Unsere Filiale ist am Samstag von 9 bis 14 Uhr geöffnet. Am Sonntag bleibt sie geschlossen.",
    "Vielen Dank, ich habe Ihren Zählerstand gespeichert. Die nächste Abschlagszahlung passe ich an. "
    "Kann ich sonst noch etwas für Sie tun?",
    "Das tut mir leid. Ich verbinde Sie mit einem Kollegen, bitte bleiben Sie kurz dran.",
)
MODES = ("http/sentence", "ws/sentence", "http/clause", "ws/stream")
KEY = "el-bench"
VOICE = "bench-voice"


@dataclass(slots=True)
class Row:
    mode: str
    first_ms: list[float] = field(default_factory=list)
    whole_ms: list[float] = field(default_factory=list)
    gaps_ms: list[float] = field(default_factory=list)
    failures: int = 0
    cpu_ms_per_reply: float = 0.0


async def llm_tokens(text: str, first_ms: float, token_ms: float) -> AsyncIterator[str]:
    """The reply as an LLM streams it: pieces of about four characters, the first after ``first_ms``."""
    await asyncio.sleep(first_ms / 1000)
    for n, token in enumerate(re.findall(r"\s*\S{1,4}", text)):
        if n:
            await asyncio.sleep(token_ms / 1000)
        yield token


@dataclass(slots=True)
class Clock:
    """When audio arrived, and the silence a caller would hear between the first and the last byte.

    Playout is simulated in real time (8,000 μ-law bytes a second): a chunk that arrives after everything
    before it has played leaves a gap, the only way a faster or slower transport is audible mid-reply.
    """

    start: float = field(default_factory=time.perf_counter)
    first: float | None = None
    last: float = 0.0
    played_until: float = 0.0
    gaps_s: float = 0.0

    def heard(self, chunk: bytes) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = self.played_until = now
        elif now > self.played_until:
            self.gaps_s += now - self.played_until
            self.played_until = now
        self.played_until += len(chunk) / 8000
        self.last = now


async def per_piece(
    tts: TextToSpeech, splitter: SentenceSplitter, text: str, args: argparse.Namespace
) -> Clock:
    """The turn runner's way: each piece synthesized and read to its end before the LLM is read on."""
    clock = Clock()

    async def speak(piece: str) -> None:
        async for chunk in tts.synthesize(piece):
            clock.heard(chunk)

    async for token in llm_tokens(text, args.llm_ms, args.token_ms):
        for piece in splitter.push(token):
            await speak(piece)
    for piece in splitter.flush():
        await speak(piece)
    return clock


async def streamed(
    tts: ElevenLabsWebSocketTextToSpeech, splitter: SentenceSplitter, text: str, args: argparse.Namespace
) -> Clock:
    """One socket per reply: opened as the LLM is asked, clauses fed as they come, audio read meanwhile."""
    clock = Clock()
    reply = tts.reply()
    opening = asyncio.create_task(reply.start())

    async def listen() -> None:
        await opening
        async for chunk in reply.audio():
            clock.heard(chunk)

    listener = asyncio.create_task(listen())
    try:
        async for token in llm_tokens(text, args.llm_ms, args.token_ms):
            for piece in splitter.push(token):
                await reply.feed(piece)
        for piece in splitter.flush():
            await reply.feed(piece)
        await reply.end()
        await listener
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):
            await listener
        await reply.aclose()
    return clock


def _runner(
    mode: str, http: ElevenLabsTextToSpeech, ws: ElevenLabsWebSocketTextToSpeech, args: argparse.Namespace
) -> Callable[[str], Awaitable[Clock]]:
    if mode == "http/sentence":
        return lambda text: per_piece(http, SentenceSplitter(), text, args)
    if mode == "ws/sentence":
        return lambda text: per_piece(ws, SentenceSplitter(), text, args)
    if mode == "http/clause":
        return lambda text: per_piece(http, SentenceSplitter(first_clause_words=6), text, args)
    return lambda text: streamed(ws, SentenceSplitter(first_clause_words=6), text, args)


async def run_mode(
    mode: str, http: ElevenLabsTextToSpeech, ws: ElevenLabsWebSocketTextToSpeech, args: argparse.Namespace
) -> Row:
    run = _runner(mode, http, ws, args)
    row = Row(mode)
    todo = [REPLIES[i % len(REPLIES)] for i in range(args.replies)]

    async def worker() -> None:
        while todo:
            text = todo.pop()
            try:
                clock = await run(text)
            except Exception:  # noqa: BLE001 - counted; a benchmark goes on
                row.failures += 1
                continue
            if clock.first is None:
                row.failures += 1
                continue
            row.first_ms.append((clock.first - clock.start) * 1000)
            row.whole_ms.append((clock.last - clock.start) * 1000)
            row.gaps_ms.append(clock.gaps_s * 1000)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    row.cpu_ms_per_reply = (time.process_time() - cpu) * 1000 / max(1, args.replies)
    return row


def table(rows: Sequence[Row]) -> str:
    head = (
        f"{'mode':<15}{'replies':>8}{'fail':>6}{'first p50':>11}{'first p95':>11}"
        f"{'whole p50':>11}{'whole p95':>11}{'gaps p50':>10}{'gaps p95':>10}{'CPU ms/reply':>14}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = [percentile(v, q) if v else float("nan") for v in (r.first_ms, r.whole_ms) for q in (50, 95)]
        gaps = [percentile(r.gaps_ms, q) if r.gaps_ms else float("nan") for q in (50, 95)]
        lines.append(
            f"{r.mode:<15}{len(r.first_ms):>8}{r.failures:>6}"
            + "".join(f"{c:>11.0f}" for c in cells)
            + "".join(f"{g:>10.0f}" for g in gaps)
            + f"{r.cpu_ms_per_reply:>14.2f}"
        )
    return "\n".join(lines)


async def _bench(args: argparse.Namespace, base_url: str) -> list[Row]:
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=3.0))
    http = ElevenLabsTextToSpeech(
        AsyncElevenLabs(api_key=KEY, base_url=base_url, httpx_client=client), voice_id=VOICE
    )
    ws = ElevenLabsWebSocketTextToSpeech(api_key=KEY, voice_id=VOICE, base_url=base_url)
    try:
        warm = argparse.Namespace(**{**vars(args), "replies": args.warmup, "concurrency": 1})
        for mode in MODES if args.warmup else ():  # the fake renders each text once, clients warm up
            await run_mode(mode, http, ws, warm)
        rows = []
        for mode in MODES:
            rows.append(await run_mode(mode, http, ws, args))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        return rows
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tts_transport", description=__doc__.split("\n")[0])
    parser.add_argument("--replies", type=int, default=40, help="replies per mode")
    parser.add_argument("--concurrency", type=int, default=4, help="replies at once")
    parser.add_argument("--warmup", type=int, default=len(REPLIES), help="unmeasured replies per mode first")
    parser.add_argument("--llm-ms", type=float, default=350.0, help="LLM first token")
    parser.add_argument("--token-ms", type=float, default=20.0, help="LLM time per token after the first")
    parser.add_argument(
        "--tts-ms", type=float, default=150.0, help="TTS first audio after a generation starts"
    )
    parser.add_argument("--tts-chunk-ms", type=float, default=20.0, help="TTS time per 100 ms of audio")
    args = parser.parse_args(argv)
    port = _free_port()
    cmd = _voicebot("fakes", "--port", str(port), "--log-level", "warning")
    cmd += ["--tts-ms", str(args.tts_ms), "--tts-chunk-ms", str(args.tts_chunk_ms)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    fake = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **quiet)
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        print(f"CPU: {machine()}")
        print(
            f"fake TTS: first audio {args.tts_ms:.0f} ms, 100 ms of audio per {args.tts_chunk_ms:.0f} ms; "
            f"LLM: first token {args.llm_ms:.0f} ms, {args.token_ms:.0f} ms per token; "
            f"{args.replies} replies per mode, {args.concurrency} at once"
        )
        print(table([]))
        rows = asyncio.run(_bench(args, f"http://127.0.0.1:{port}"))
        print()
        print(table(rows))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    return 0


if __name__ == "__main__":
    # Warnings and up when run as a script; never reconfigure logging for a process that imports main().
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    raise SystemExit(main())
