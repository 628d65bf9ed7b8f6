"""Speech over the bot's voice: backchannels must leave it whole, interruptions must silence it fast.

Run: ``python -m bench.overlap`` (``--points 1.0,2.5,4.0``, ``--stt-ms 100``). Not a test: it prints a table
with the CPU model. Whole calls: the Twilio simulator (caller audio and the caller's playback in real time,
200 ms playout lead) against the bot in this process, the provider fakes through the real SDKs (the LLM
answers a long reply, TTS is eSpeak NG, STT returns the words of the registered caller clips after
``--stt-ms``). The caller speaks a backchannel or an interruption at a point into the answer.

- *clears*: ``clear`` messages after the caller's onset (backchannels: 0).
- *gap*: the longest silence in the bot's audio at the caller after the onset, inside the answer (not
  before its first audio or after its last); backchannels: at most 100 ms (pausing at onsets left
  300–420 ms).
- *before*: the same over the answer before the onset, the control: a gap there is the feed running
  late (a busy machine, the next sentence's TTS), not the overlap.
- *ducked*: caller's onset → the first ducked audio at the caller (the bot's voice 18 dB down): the onset
  is confirmed after ``speech_confirm_ms`` of voice, then what was already buffered at the caller plays out.
- *dry*: caller's onset → the bot's audio at the caller runs dry (the ``clear``); the issue's "perceived
  stop" for interruptions, target p95 ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults import PUBLIC_URL, bot_settings, speech
from bench.run import machine
from fakes.behaviour import FakeBehaviour, FakeReply
from fakes.loopback import serve_loopback
from fakes.server import run_fake_providers
from simulator.call import place_call
from simulator.record import underruns
from simulator.twilio import TwilioSimulator
from web.app import create_app
from web.logging import configure_logging

QUESTION = "Welche Tarife haben Sie?"
ANSWER = (
    "Gerne erkläre ich Ihnen unsere Tarife. Der Grundtarif kostet neunzehn Euro im Monat. "
    "Der Komforttarif kostet neunundzwanzig Euro im Monat und enthält eine persönliche Beratung. "
    "Außerdem gibt es einen Ökotarif mit Strom aus erneuerbaren Energien."
)
BACKCHANNELS = ("ja", "mhm", "genau", "okay", "stimmt", "alles klar", "richtig", "klar", "aha")
INTERRUPTIONS = (
    "Stopp.",
    "Moment, bitte.",
    "Nein.",
    "Entschuldigung, ich habe eine Frage.",
    "Was kostet der Ökotarif?",
)


@dataclass
class Probe:
    kind: str
    text: str
    point_s: float
    clears: int
    gap_ms: float | None
    gap_before_ms: float | None
    """The same measure over the answer before the onset: underruns of the feed, the control."""
    ducked_ms: float | None
    dry_ms: float | None
    whole: bool
    """Backchannel: the answer's transcript is whole and not interrupted."""


class Events:
    """The bot's call events, and when the floor machine ducked (with the audio buffered at the caller)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.call: TwilioSimulator | None = None
        self.ducked_at: float | None = None

    def publish(self, event: Any) -> None:
        self.items.append(event)
        call = self.call
        ducking = event.kind == "state_changed" and event.dest == "barge_in"
        if ducking and call is not None and self.ducked_at is None:
            buffered = max(0.0, call.playout.drain_at - call.clock.now())
            self.ducked_at = time.monotonic() + buffered

    def state(self, call_sid: str) -> str:
        states = [e for e in self.items if e.kind == "state_changed" and e.call_sid == call_sid]
        return str(states[-1].dest) if states else ""


async def _line(call: TwilioSimulator, ms: int) -> None:
    await call.send_silence(ms, realtime=True)


async def one_call(
    base_url: str, behaviour: FakeBehaviour, events: Events, kind: str, text: str, point_s: float
) -> Probe:
    question, clip = speech(QUESTION), speech(text)
    behaviour.clips.clear()
    behaviour.clips.register(QUESTION, question)
    behaviour.clips.register(text, clip)
    async with place_call(base_url, public_url=PUBLIC_URL) as call:
        await call.wait_for_audio(timeout_s=10)
        sid = call.call_sid
        while events.state(sid) != "listening":  # the greeting in real time: the echo gate learns the line
            await _line(call, 100)
        behaviour.replies.append(FakeReply(ANSWER))
        await call.send_utterance(question)
        while events.state(sid) != "speaking":
            await _line(call, 20)
        answer_at = time.monotonic()
        await _line(call, int(point_s * 1000))
        events.call, events.ducked_at = call, None
        clears_before = len(call.record.clears)
        utt = await call.send_utterance(clip, realtime=True)
        onset = utt.started_at
        give_up = time.monotonic() + 20
        while time.monotonic() < give_up:
            await _line(call, 100)
            cleared = len(call.record.clears) > clears_before
            if (kind == "interruption" and cleared) or events.state(sid) == "listening":
                break
        inside = underruns(call.playout.gaps, [])  # gaps inside the answer, not between replies
        gaps = [g.seconds for g in inside if g.resumed_at >= onset]
        before = [g.seconds for g in inside if answer_at <= g.resumed_at < onset]
        clears = call.record.clears[clears_before:]
        answer = [e for e in events.items if e.kind == "transcript" and e.call_sid == sid and e.role == "bot"]
        whole = bool(answer) and answer[-1].text == ANSWER and not answer[-1].interrupted
        ducked = events.ducked_at
        events.call = None
    return Probe(
        kind,
        text,
        point_s,
        len(clears),
        max(gaps) * 1000 if gaps else 0.0,
        max(before) * 1000 if before else 0.0,
        (ducked - onset) * 1000 if ducked is not None else None,
        (clears[0] - onset) * 1000 if clears else None,
        whole,
    )


def _ms(value: float | None) -> str:
    return f"{value:6.0f}" if value is not None else f"{'-':>6s}"


def table(probes: Sequence[Probe]) -> str:
    head = (
        f"{'kind':12s} {'caller says':38s} {'at s':>5s} {'clears':>6s} {'gap ms':>6s} {'before':>6s} "
        f"{'ducked':>6s} {'dry':>6s}"
    )
    rows = [head, "-" * len(head)]
    for p in probes:
        extra = "" if p.kind != "backchannel" else ("  answer whole" if p.whole else "  ANSWER CUT")
        rows.append(
            f"{p.kind:12s} {p.text[:38]:38s} {p.point_s:5.1f} {p.clears:6d} {_ms(p.gap_ms)} "
            f"{_ms(p.gap_before_ms)} {_ms(p.ducked_ms)} {_ms(p.dry_ms)}{extra}"
        )
    return "\n".join(rows)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summary(probes: Sequence[Probe]) -> str:
    back = [p for p in probes if p.kind == "backchannel"]
    inter = [p for p in probes if p.kind == "interruption"]
    lines = []
    if back:
        gaps = [p.gap_ms or 0.0 for p in back]
        lines.append(
            f"backchannels: {len(back)} calls, clears {sum(p.clears for p in back)} (target 0), "
            f"answer whole {sum(p.whole for p in back)}/{len(back)}, longest gap {max(gaps):.0f} ms "
            "(target <= 100)"
        )
    if inter:
        dry = [p.dry_ms for p in inter if p.dry_ms is not None]
        ducked = [p.ducked_ms for p in inter if p.ducked_ms is not None]
        cleared = sum(1 for p in inter if p.clears)
        line = f"interruptions: {len(inter)} calls, a clear in {cleared}/{len(inter)}"
        if dry:
            line += f"; dry p50 {statistics.median(dry):.0f} / p95 {_p95(dry):.0f} ms (target p95 <= 300)"
        if ducked:
            line += f"; ducked p50 {statistics.median(ducked):.0f} / p95 {_p95(ducked):.0f} ms"
        lines.append(line)
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Probe]:
    behaviour = FakeBehaviour()
    behaviour.pace("stt", ttfb_ms=args.stt_ms)
    behaviour.pace("chat", ttfb_ms=350, per_token_ms=5)
    events = Events()
    cases = [("backchannel", t) for t in args.backchannels] + [
        ("interruption", t) for t in args.interruptions
    ]
    probes: list[Probe] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with run_fake_providers(behaviour, speech=True) as fake:
            settings = bot_settings(
                fake, Path(tmp), failover=True, local_stt=False, overrides=["playout_lead_ms=200", *args.set]
            )
            app = create_app(settings)
            app.state.ctx.add_sink(events)
            async with serve_loopback(app, name="bot", lifespan="on", ws_max_size=1 << 20) as port:
                base_url = f"http://127.0.0.1:{port}"
                for i, (kind, text) in enumerate(cases):
                    points = args.points if args.all_points else [args.points[i % len(args.points)]]
                    for point in points:
                        probes.append(await one_call(base_url, behaviour, events, kind, text, point))
                        print(table(probes[-1:]).splitlines()[-1], flush=True)
    return probes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    floats = lambda s: [float(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--points", type=floats, default=[1.0, 2.5, 4.0], help="seconds into the answer")
    parser.add_argument("--all-points", action="store_true", help="every phrase at every point")
    parser.add_argument("--stt-ms", type=int, default=100, help="the fake transcriber's latency")
    parser.add_argument("--backchannels", type=lambda s: s.split("|"), default=list(BACKCHANNELS))
    parser.add_argument("--interruptions", type=lambda s: s.split("|"), default=list(INTERRUPTIONS))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a bot setting")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"providers (fakes): STT {args.stt_ms} ms, LLM first token 350 ms, TTS eSpeak NG; lead 200 ms")
    print(f"settings: {', '.join(args.set) or 'defaults'}\n")
    started = time.monotonic()
    probes = asyncio.run(run(args))
    print()
    print(table(probes))
    print()
    print(summary(probes))
    print(f"\n{len(probes)} calls in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    # Only as a script: a test that imports ``main`` must not change the process's logging for later tests.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    configure_logging(fmt="console", level="error")
    raise SystemExit(main())
