"""Whole-call latency, today's path against preemptive replies, in one run: voice to voice, stages, greeting.

Run from the repository root: ``python -m bench.latency`` (``--levels 1,50,200``; the smoke size is
``--levels 1 --seconds 4``). Not a test: it prints a table.

For each path the bot runs as a process (``voicebot serve``) against ``voicebot fakes`` with fixed provider
latencies: the realtime STT final ``--realtime-ms`` after the commit (100), LLM first token ``--llm-ms``
(350) then ``--llm-token-ms`` per token (15, about 65 tokens/s), TTS first byte ``--tts-ms`` (150).
``voicebot simulate --scenario turns`` places the calls: eSpeak sentences in real time, each reply listened
to its end. The paths:

- *today*: no preemptive reply, TTS gets the first whole sentence (``PREEMPTIVE_REPLY=false``,
  ``FIRST_CLAUSE_WORDS=0``);
- *new*: the reply starts at the pause judged complete and TTS gets the first clause (the defaults).

Columns: voice to voice (the simulator: last voiced frame sent → first reply audio received) p50/p95; the
stages from the bot's own per-turn events (the call store, ms after the end of speech): end-of-turn
decision, STT final, LLM first token, first clause (or sentence), TTS first byte, and audio sent (handed to
the caller's socket; from there on it is the way to the caller and the simulator's own loop); overhead
p95 = voice to voice − what the providers and the end of turn cannot avoid (today: end of turn + LLM +
the tokens up to the first clause + TTS; new: the later of the end of turn and eager pause + STT + LLM +
tokens + TTS), and in brackets the same up to the audio sent, which leaves out the simulator's share;
greeting = ``/voice`` posted → first greeting audio at the caller (in the level's calls, and before the
levels over ``--greetings`` short calls placed one after another); CPU % of one core per call and RSS per
call of the bot process over the steady window; the share of turns answered preemptively.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.processes import Placement, Sampler, Services, rss_mib, services
from bench.run import machine, simulate
from dialogue.profile import load_profile
from dialogue.sentences import SentenceSplitter
from simulator.report import percentile
from web.settings import Settings

PATHS: dict[str, dict[str, str]] = {
    "today": {"PREEMPTIVE_REPLY": "false", "FIRST_CLAUSE_WORDS": "0"},
    "new": {"PREEMPTIVE_REPLY": "true"},
}
STAGES = (
    ("eot", "end of turn"),
    ("transcript_ms", "STT final"),
    ("llm_first_token_ms", "LLM 1st tok"),
    ("first_sentence_ms", "1st clause"),
    ("tts_first_byte_ms", "TTS 1st byte"),
    ("first_audio_ms", "audio sent"),
)


def _events(data_dir: Path, call_sids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The bot's stored latency and end-of-turn events of these calls, in order, by call."""
    out: dict[str, list[dict[str, Any]]] = {sid: [] for sid in call_sids}
    with sqlite3.connect(data_dir / "calls.sqlite3") as db:
        query = "SELECT call_sid, data FROM call_events WHERE kind IN ('latency', 'turn_decision')"
        rows = db.execute(query + " ORDER BY at, id").fetchall()
    for sid, data in rows:
        if sid in out:
            out[sid].append(json.loads(data))
    return out


def _turns(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per answered turn: its latency event's stages plus the end-of-turn wait before it."""
    turns: list[dict[str, Any]] = []
    eot: float | None = None
    for e in events:
        if e["kind"] == "turn_decision" and e.get("ended"):
            eot = e.get("waited_ms")
        elif e["kind"] == "latency" and e.get("first_audio_ms") is not None:
            turns.append({**e, "eot": eot})
    return turns


def _floor(turn: dict[str, Any], *, eager_ms: int, args: argparse.Namespace) -> float | None:
    eot, first, clause = turn["eot"], turn.get("llm_first_token_ms"), turn.get("first_sentence_ms")
    if eot is None or first is None or clause is None:
        return None
    streaming = max(0.0, clause - first)  # the fake's tokens up to the first clause: provider time
    reply = args.llm_ms + streaming + args.tts_ms
    if turn.get("preemptive_saved_ms") is not None:
        return float(max(eot, eager_ms + args.realtime_ms + reply))
    return float(eot + reply)


def run_level(
    svc: Services, path: str, n: int, args: argparse.Namespace, idle_rss: float, work: Path
) -> dict[str, Any]:
    out = work / f"{path}-{n}.json"
    extra = ["--scenario", "turns", "--ramp-up", str(args.ramp), "--duration", str(args.seconds)]
    sampler = Sampler(svc.server.pid, svc.fakes.pid)
    with sampler.running():
        t0 = time.monotonic()
        sim = simulate(svc, out, calls=n, extra=extra)
        sampler.sims = [sim.pid]
        code = sim.wait(timeout=args.ramp + args.seconds + 120)
    time.sleep(2.0)  # the call store writes in batches
    calls = json.loads(out.read_text())["calls"]
    events = _events(svc.data_dir, {c["call_sid"] for c in calls})
    eager = int(Settings.model_fields["eager_eot_ms"].default)
    v2v: list[float] = []
    overhead: list[float] = []
    sent_overhead: list[float] = []
    stages: dict[str, list[float]] = {key: [] for key, _ in STAGES}
    preemptive = 0
    saved: list[float] = []
    for call in calls:
        heard = call["response_latency_ms"]
        turns = _turns(events.get(call["call_sid"], []))
        v2v += heard
        for turn in turns:
            if turn.get("preemptive_saved_ms") is not None:
                preemptive += 1
                saved.append(float(turn["preemptive_saved_ms"]))
            for key, _ in STAGES:
                if turn.get(key) is not None:
                    stages[key].append(float(turn[key]))
        if len(turns) == len(heard):  # a turn split by a pause would pair the wrong figures: skip the call
            for turn, latency in zip(turns, heard, strict=True):
                floor = _floor(turn, eager_ms=eager, args=args)
                if floor is not None:
                    overhead.append(latency - floor)
                    if turn.get("first_audio_ms") is not None:
                        sent_overhead.append(float(turn["first_audio_ms"]) - floor)
    window = [s for s in sampler.samples if t0 + args.ramp + 2 <= s.at <= t0 + args.ramp + args.seconds - 1]
    window = window if len(window) >= 2 else sampler.samples
    first, last = window[0], window[-1]
    span = max(last.at - first.at, 1e-9)
    greetings = [c["greeting_latency_ms"] for c in calls if c.get("greeting_latency_ms") is not None]
    answered = sum(len(_turns(e)) for e in events.values())
    return {
        "path": path,
        "calls": n,
        "turns": len(v2v),
        "failed": sum(c["error"] is not None for c in calls),
        "simulator_exit": code,
        "v2v_p50": percentile(v2v, 50),
        "v2v_p95": percentile(v2v, 95),
        "stages_p50": {key: percentile(values, 50) for key, values in stages.items()},
        "overhead_p95": percentile(overhead, 95),
        "sent_overhead_p95": percentile(sent_overhead, 95),
        "greeting_p50": percentile(greetings, 50),
        "greeting_p95": percentile(greetings, 95),
        "cpu_percent_per_call": (last.server_cpu - first.server_cpu) / span * 100 / n,
        "rss_per_call_mib": (max(s.server_rss for s in window) - idle_rss) / n,
        "preemptive_share": preemptive / answered if answered else None,
        "preemptive_saved_p50": percentile(saved, 50),
    }


def greetings(svc: Services, calls: int, work: Path) -> list[float]:
    """``/voice`` → first greeting audio of short calls placed one after another (no other load)."""
    out = work / "greetings.json"
    extra = ["--scenario", "silence", "--max-call-s", "1.5", "--total-calls", str(calls)]
    simulate(svc, out, calls=1, extra=extra).wait()
    done = json.loads(out.read_text())["calls"]
    return [float(c["greeting_latency_ms"]) for c in done if c.get("greeting_latency_ms") is not None]


def _f(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: Sequence[dict[str, Any]]) -> str:
    stage_head = " ".join(f"{label:>12}" for _, label in STAGES)
    head = (
        f"{'path':>5} {'calls':>5} {'turns':>5} | {'v2v p50/p95':>11} | {stage_head} | "
        f"{'ovh p95 (sent)':>14} | "
        f"{'greeting p50/p95':>16} | {'CPU%/call':>9} {'RSS MiB/call':>12} | {'preempt':>7} {'failed':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        stage_cells = " ".join(f"{_f(r['stages_p50'][key]):>12}" for key, _ in STAGES)
        share = r["preemptive_share"]
        lines.append(
            f"{r['path']:>5} {r['calls']:>5} {r['turns']:>5} | "
            f"{_f(r['v2v_p50']):>5} / {_f(r['v2v_p95']):>3} | "
            f"{stage_cells} | {_f(r['overhead_p95']):>6} ({_f(r['sent_overhead_p95']):>4}) | "
            f"{_f(r['greeting_p50']):>7} / {_f(r['greeting_p95']):>6} | "
            f"{r['cpu_percent_per_call']:>9.2f} {r['rss_per_call_mib']:>12.2f} | "
            f"{'-' if share is None else f'{share:.0%}':>7} {r['failed']:>6}"
        )
    return "\n".join(lines)


def clause_table(token_ms: float, choices: Sequence[int] = (0, 2, 3, 4, 6)) -> str:
    """Words the TTS waits for before its first piece, per ``FIRST_CLAUSE_WORDS``, over the profile's answers
    streamed a word per token: the cost of each choice at ``token_ms`` per token, and its first pieces."""
    answers = [faq.answer for faq in load_profile().faqs]
    lines = [f"first piece for TTS over {len(answers)} profile answers, a word per token at {token_ms:g} ms:"]
    for n in choices:
        waited: list[int] = []
        firsts: list[str] = []
        for answer in answers:
            splitter = SentenceSplitter(first_clause_words=n)
            words = answer.split(" ")
            first = ""
            for count, word in enumerate(words, start=1):
                pieces = splitter.push(word + " ")
                if pieces:
                    first = pieces[0]
                    waited.append(count)
                    break
            if not first:
                first = splitter.flush()[0]
                waited.append(len(words))
            firsts.append(first)
        mean = sum(waited) / len(waited)
        lines.append(
            f"  N={n}: waits {mean:4.1f} words on average (max {max(waited)}), {mean * token_ms:4.0f} ms; "
            f"e.g. {firsts[0]!r}, {firsts[-1]!r}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,50,200", help="Concurrent calls per level.")
    parser.add_argument("--paths", default="today,new", help="Which paths, in this order.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Load per level after the ramp-up.")
    parser.add_argument("--ramp", type=float, default=5.0, help="Ramp-up per level (seconds).")
    parser.add_argument("--greetings", type=int, default=20, help="Sequential calls timing the greeting.")
    parser.add_argument("--warmup-s", type=float, default=8.0, help="A warm-up call first (0: none).")
    parser.add_argument("--realtime-ms", type=float, default=100.0, help="Realtime STT final after commit.")
    parser.add_argument("--llm-ms", type=float, default=350.0, help="LLM first token.")
    parser.add_argument("--llm-token-ms", type=float, default=15.0, help="LLM time per further token.")
    parser.add_argument("--tts-ms", type=float, default=150.0, help="TTS first byte.")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True, help="Bot on CPU 0.")
    parser.add_argument("--json", type=Path, default=None, help="Write every figure here too.")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    placement = Placement.split() if args.pin else Placement()
    fakes = ["--realtime-ms", str(args.realtime_ms), "--llm-ms", str(args.llm_ms)]
    fakes += ["--llm-token-ms", str(args.llm_token_ms), "--tts-ms", str(args.tts_ms), "--stt-ms", "300"]
    print(f"machine: {machine()}", flush=True)
    print(f"placement: {placement.describe()}", flush=True)
    print(
        f"providers (fakes): realtime STT final {args.realtime_ms:g} ms after commit, LLM first token "
        f"{args.llm_ms:g} ms + {args.llm_token_ms:g} ms/token, TTS first byte {args.tts_ms:g} ms",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="voicebot-latency-") as tmp:
        for path in paths:
            work = Path(tmp) / path
            env = {"STT_MODE": "realtime", **PATHS[path]}
            with services(max(levels), work, placement, env=env, fakes_args=fakes) as svc:
                if args.warmup_s > 0:
                    extra = ["--turns", "1", "--duration", str(args.warmup_s)]
                    simulate(svc, work / "warmup.json", calls=1, extra=extra).wait()
                    time.sleep(1.0)
                idle_rss = rss_mib(svc.server.pid)
                if args.greetings > 0:
                    greeted = greetings(svc, args.greetings, work)
                    print(
                        f"{path}: /voice → first greeting audio over {len(greeted)} calls one after another: "
                        f"p50 {_f(percentile(greeted, 50))} ms, p95 {_f(percentile(greeted, 95))} ms",
                        flush=True,
                    )
                for n in levels:
                    row = run_level(svc, path, n, args, idle_rss, work)
                    rows.append(row)
                    print(
                        f"{path} {n}: {row['turns']} turns, v2v p50 {_f(row['v2v_p50'])} ms, failed "
                        f"{row['failed']}",
                        file=sys.stderr,
                        flush=True,
                    )
                    time.sleep(2.0)
    print()
    print(table(rows))
    print()
    print(clause_table(args.llm_token_ms))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
