"""The fault matrix: one simulated call per stage × fault, and what the caller lived through.

Run: ``python -m bench.faults`` (about 3 minutes; ``--stages``, ``--faults`` and ``--scopes`` pick fewer
cells, ``--no-failover`` shows the same matrix with hedges and the fallback model off). Not a test: the
figures are wall-clock times on whatever machine runs it, printed with its CPU model.

The bot and the provider fakes run in this process (the fakes paced like the whole-call benchmark: STT
300 ms, LLM first token 350 ms, TTS first byte 150 ms) and each call is driven only through the simulator
and the bot's public call events, so the matrix runs against any session implementation. Per cell:

- *first audio*: the caller's end of speech → the first bot audio at the caller. The silence after the
  question is sent in real time, so this includes the end-of-turn wait, as on a phone.
- *heard*: ``answer`` (the fake model's reply, in whichever voice) or ``fallback`` (a fixed sentence),
  or ``silence``.
- *next turn*: the fault cleared, does the following question get a real answer (and how fast)?
- *tasks left*: the bot's own asyncio tasks still alive after the call ended (should be 0).
- *requests*: requests to the faulted stage during the faulted turn (``a/b``: per model, primary first),
  which shows retries, hedges and fallbacks at work.

Scopes: ``once`` fails only the next request of the stage (a flaky provider: hedges and retries can save the
turn); ``down`` fails every request (a provider outage: STT and TTS on their whole endpoint, the LLM on the
primary model only, so the fallback model can answer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import machine
from fakes.behaviour import DEFAULT_REPLY, FakeBehaviour, Fault
from fakes.loopback import serve_loopback
from fakes.server import FakeEndpoints, run_fake_providers
from media.codec import pcm16_to_ulaw
from media.espeak import synthesize_pcm16
from simulator.call import place_call
from simulator.twilio import TwilioSimulator
from web.app import create_app
from web.logging import configure_logging
from web.settings import Settings

PUBLIC_URL = "https://bot.example.test"
PRIMARY_MODEL = "gpt-4o-mini"
FALLBACK_MODEL = "gpt-4o-mini-fallback"
STAGES = {"stt": "stt", "llm": "chat", "tts": "tts"}
"""Our stage names → the fakes' endpoint names."""
ANSWER_START = DEFAULT_REPLY.split(".")[0]
BOT_PACKAGES = tuple(
    str(Path(__file__).resolve().parents[1] / p) for p in ("media", "dialogue", "web", "console")
)
WAIT_S = 10.0
"""The longest a turn may take before the cell is marked as silence (3× the largest stage budget)."""


@dataclass
class Events:
    """The bot's call events, as the console receives them."""

    items: list[Any] = field(default_factory=list)

    def publish(self, event: Any) -> None:
        self.items.append(event)

    def state(self, call_sid: str) -> str:
        states = [e for e in self.items if e.kind == "state_changed" and e.call_sid == call_sid]
        return str(getattr(states[-1], "dest", "")) if states else ""

    def bot_lines(self, call_sid: str, since: int) -> list[str]:
        return [
            str(e.text)
            for e in self.items[since:]
            if e.kind == "transcript" and e.call_sid == call_sid and getattr(e, "role", "") == "bot"
        ]

    def ended(self, call_sid: str) -> bool:
        return any(e.kind == "call_ended" and e.call_sid == call_sid for e in self.items)


@dataclass
class Turn:
    latency_s: float | None
    heard: str


@dataclass
class Cell:
    stage: str
    fault: str
    scope: str
    requests: str
    """Requests to the faulted stage's endpoint during the faulted turn, by model where there are several."""
    faulted: Turn
    following: Turn
    tasks_left: int


def bot_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {
        t
        for t in asyncio.all_tasks()
        if t is not current
        and (code := getattr(t.get_coro(), "cr_code", None)) is not None
        and code.co_filename.startswith(BOT_PACKAGES)
    }


def speech(text: str) -> bytes:
    return pcm16_to_ulaw(synthesize_pcm16(text))


def classify(lines: list[str], audio: bool) -> str:
    if not lines:
        return "audio, no text" if audio else "silence"
    first = lines[0]
    return "answer" if first.startswith(ANSWER_START) else f"fallback: {first[:38]}"


async def settle(call: TwilioSimulator, events: Events) -> None:
    """Lets the bot's audio play out (fast-forwarded) while the line carries silence, until it listens."""

    def listening() -> bool:
        return events.state(call.call_sid) == "listening" and not call.playout.playing

    loop = asyncio.get_running_loop()
    give_up = loop.time() + 3 * WAIT_S
    while not listening() and loop.time() < give_up and not call.closed:
        await call.play_out()
        await call.send_silence(20)
        with contextlib.suppress(TimeoutError):
            await call.wait_for(listening, timeout_s=0.05)


async def ask(call: TwilioSimulator, events: Events, question: bytes) -> Turn:
    since = len(events.items)
    utt = await call.send_utterance(question)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + WAIT_S
    while utt.first_audio_at is None and loop.time() < give_up and not call.closed:
        await call.send_silence(100, realtime=True)  # the line goes on while the caller waits
    latency = utt.response_latency
    await settle(call, events)
    return Turn(latency, classify(events.bot_lines(call.call_sid, since), latency is not None))


def inject(behaviour: FakeBehaviour, stage: str, fault: Fault, scope: str) -> None:
    endpoint = STAGES[stage]
    if scope == "once":
        behaviour.inject(endpoint, fault, count=1)  # type: ignore[arg-type]
    elif stage == "llm":
        behaviour.inject("chat", fault, count=-1, model=PRIMARY_MODEL)
    else:
        behaviour.inject(endpoint, fault, count=-1)  # type: ignore[arg-type]


async def one_call(
    base_url: str, behaviour: FakeBehaviour, events: Events, cell: tuple[str, Fault | None, str]
) -> Cell:
    stage, fault, scope = cell
    before = bot_tasks()
    question = speech("Ich habe eine Frage zu meiner Rechnung.")
    async with place_call(base_url, public_url=PUBLIC_URL) as call:
        await call.wait_for_audio(timeout_s=WAIT_S)
        await settle(call, events)
        if fault is not None:
            inject(behaviour, stage, fault, scope)
        seen = len(behaviour.requests)
        faulted = await ask(call, events, question)
        behaviour.clear_faults()
        endpoint = STAGES.get(stage, "chat")
        asked = [str(r.body.get("model", "")) for r in behaviour.requests[seen:] if r.endpoint == endpoint]
        requests = "/".join(str(asked.count(m)) for m in dict.fromkeys(asked)) or "0"
        following = await ask(call, events, question)
    # The bot finishes its side of the hang-up on its own time; give it up to 5 s (the call is over).
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 5
    while (not events.ended(call.call_sid) or bot_tasks() - before) and loop.time() < give_up:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    left = len(bot_tasks() - before)
    return Cell(stage, fault.value if fault else "-", scope, requests, faulted, following, left)


def bot_settings(
    fake: FakeEndpoints, data_dir: Path, *, failover: bool, local_stt: bool, overrides: Sequence[str] = ()
) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "sk-bench",
        "openai_base_url": fake.openai_base_url,
        "elevenlabs_api_key": "el-bench",
        "elevenlabs_base_url": fake.elevenlabs_base_url,
        "stt_provider": "openai",
        "llm_provider": "openai",
        "tts_provider": "elevenlabs",
        "openai_llm_model": PRIMARY_MODEL,
        "public_url": PUBLIC_URL,
        "data_dir": data_dir,
        "log_level": "error",
        "playout_lead_ms": 600_000,  # the bot sends at once; the simulator fast-forwards playback
        "reprompt_after_s": 30.0,
        "provider_failures_before_handover": 10,
    }
    if failover:
        values |= {"llm_fallback_model": FALLBACK_MODEL, "stt_local_fallback": local_stt}
    else:
        values |= {"stt_hedge_after_s": 0, "llm_hedge_after_s": 0}
    for item in overrides:
        key, _, value = item.partition("=")
        values[key.strip().lower()] = value
    return Settings.model_validate(values)


def _ms(value: float | None) -> str:
    return f"{value * 1000:6.0f}" if value is not None else f"{'-':>6s}"


def table(cells: Sequence[Cell]) -> str:
    head = (
        f"{'stage':5s} {'fault':9s} {'scope':5s} {'requests':>8s} | {'first audio ms':>14s}  {'heard':44s} | "
        f"{'next turn':9s} {'ms':>6s} | {'tasks left':>10s}"
    )
    rows = [head, "-" * len(head)]
    for c in cells:
        ok = "ok" if c.following.heard == "answer" else "FAILED"
        first = _ms(c.faulted.latency_s)
        rows.append(
            f"{c.stage:5s} {c.fault:9s} {c.scope:5s} {c.requests:>8s} | {first:>14s}  "
            f"{c.faulted.heard:44s} | {ok:9s} {_ms(c.following.latency_s)} | {c.tasks_left:10d}"
        )
    return "\n".join(rows)


async def run(args: argparse.Namespace) -> list[Cell]:
    behaviour = FakeBehaviour()
    behaviour.pace("stt", ttfb_ms=300)
    behaviour.pace("chat", ttfb_ms=350, per_token_ms=20)
    behaviour.pace("tts", ttfb_ms=150, per_token_ms=20)
    events = Events()
    cells: list[tuple[str, Fault | None, str]] = [("-", None, "-")]
    cells += [
        (stage, Fault(fault), scope)
        for stage in args.stages
        for fault in args.faults
        for scope in args.scopes
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        async with run_fake_providers(behaviour, speech=False) as fake:
            settings = bot_settings(
                fake, Path(tmp), failover=not args.no_failover, local_stt=args.local_stt, overrides=args.set
            )
            app = create_app(settings)
            app.state.ctx.add_sink(events)
            async with serve_loopback(app, name="bot", lifespan="on", ws_max_size=1 << 20) as port:
                base_url = f"http://127.0.0.1:{port}"
                for cell in cells:
                    results.append(await one_call(base_url, behaviour, events, cell))
                    print(table(results[-1:]).splitlines()[-1], flush=True)
                print(f"\nproviders: {app.state.ctx.providers.describe()}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--stages", type=lambda s: s.split(","), default=list(STAGES))
    parser.add_argument("--faults", type=lambda s: s.split(","), default=[f.value for f in Fault])
    parser.add_argument("--scopes", type=lambda s: s.split(","), default=["once", "down"])
    parser.add_argument("--no-failover", action="store_true", help="hedges and the fallback model off")
    parser.add_argument("--local-stt", action="store_true", help="STT_LOCAL_FALLBACK=true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a bot setting")
    args = parser.parse_args(argv)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    configure_logging(fmt="console", level="error")
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # the fakes' resets are the point here
    print(f"machine: {machine()}")
    print("providers (fakes): STT 300 ms, LLM first token 350 ms, TTS first byte 150 ms; end of turn 500 ms")
    print(f"failover: {'off' if args.no_failover else 'on'}; local STT fallback: {args.local_stt}")
    print(f"settings: {', '.join(args.set) or 'defaults'}\n")
    started = time.monotonic()
    cells = asyncio.run(run(args))
    print()
    print(table(cells))
    print(f"\n{len(cells)} calls in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
