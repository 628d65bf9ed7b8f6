"""End of turn on hesitating German callers: false cut-offs and delay, words + silence vs silence alone.

Run: ``python -m bench.turn_taking`` (``--stt-ms 100,300``, ``--limit N``). Not a test: it prints a table.
Every turn of ``bench.hesitation_corpus`` runs through the real ``TurnDetector`` (WebRTC VAD, echo gate,
the stream clock). At each ``SpeechPaused`` the transcriber is played by the corpus itself: after
``--stt-ms`` of stream time it returns the words of the audio up to that pause (100 ms: the final of a
realtime transcriber after commit; 300 ms: today's batch request), the end-of-turn judge gives its verdict
and the detector's ``judge_pause`` applies it. A turn is cut off when the detector ends it before the
caller's last part has ended; delay is the end-of-turn decision minus the true end of speech (so it
includes the VAD's hangover), averaged over the turns that were not cut off.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.hesitation_corpus import Turn, build_corpus
from bench.run import machine
from media.codec import FRAME_BYTES
from media.endpointing import judge_turn
from media.turns import SpeechEnded, SpeechPaused, TurnConfig, TurnDetector

BASELINES_MS = (300, 500, 600, 800, 1100)
EAGER_MS = 100
"""The policy's ``eager_eot_ms``: the pause is transcribed and judged from 100 ms of silence on."""
EAGER_BEFORE_MS = 200
"""The default before verdicts were wired into calls, kept in the table for comparison."""


@dataclass(frozen=True, slots=True)
class Outcome:
    cut_off: bool
    delay_ms: int | None
    reason: str
    audio_ms: int
    """Caller audio pushed until the decision."""


@dataclass(frozen=True, slots=True)
class Score:
    policy: str
    cut_off_rate: float
    mean_delay_ms: float
    p90_delay_ms: float
    cpu_percent: float
    """CPU of detector + judge per second of caller audio, as % of one core: one listening call's cost."""


def run_turn(
    turn: Turn, config: TurnConfig, stt_ms: int | None, verdicts: list[str] | None = None
) -> Outcome:
    """One turn through the detector; ``stt_ms`` None means silence alone (no judge)."""
    detector = TurnDetector(config)
    pending: list[tuple[int, int]] = []  # (stream time the transcript arrives, speech_end_ms it covers)
    for i in range(0, len(turn.ulaw), FRAME_BYTES):
        events = []
        while pending and pending[0][0] <= detector.now_ms:
            _, speech_end = pending.pop(0)
            verdict = judge_turn(turn.words_until(speech_end))
            if verdicts is not None:
                verdicts.append(f"{verdict.kind}: {verdict.reason}")
            events += detector.judge_pause(verdict, speech_end)
        events += detector.push(turn.ulaw[i : i + FRAME_BYTES])
        for event in events:
            if isinstance(event, SpeechPaused) and stt_ms is not None:
                pending.append((event.at_ms + stt_ms, event.speech_end_ms))
            if isinstance(event, SpeechEnded):
                if event.at_ms < turn.end_ms:
                    return Outcome(True, None, event.reason, detector.now_ms)
                return Outcome(False, event.at_ms - turn.end_ms, event.reason, detector.now_ms)
    return Outcome(False, None, "never ended", detector.now_ms)


def score(name: str, turns: list[Turn], config: TurnConfig, stt_ms: int | None) -> Score:
    start = time.process_time()
    outcomes = [run_turn(t, config, stt_ms) for t in turns]
    cpu_s = time.process_time() - start
    audio_s = sum(o.audio_ms for o in outcomes) / 1000
    delays = sorted(o.delay_ms for o in outcomes if o.delay_ms is not None)
    cut = sum(o.cut_off for o in outcomes) / len(outcomes)
    mean = statistics.fmean(delays) if delays else float("nan")
    p90 = delays[int(0.9 * (len(delays) - 1))] if delays else float("nan")
    return Score(name, cut, mean, p90, cpu_s / audio_s * 100)


def judge_cpu_us(turns: list[Turn], repeat: int = 200) -> tuple[float, int]:
    """CPU per verdict, over the transcript of every word boundary of the corpus (a superset of pauses)."""
    texts = [" ".join(w.text for w in t.words[:n]) for t in turns for n in range(1, len(t.words) + 1)]
    start = time.process_time()
    for _ in range(repeat):
        for text in texts:
            judge_turn(text)
    return (time.process_time() - start) / (repeat * len(texts)) * 1e6, len(texts)


def corpus_summary(turns: list[Turn]) -> str:
    pauses = [p for t in turns for p in t.pauses_ms]
    cats: dict[str, int] = {}
    for t in turns:
        cats[t.category] = cats.get(t.category, 0) + 1
    kinds = ", ".join(f"{k} {v}" for k, v in cats.items())
    span = f"{min(pauses)}-{max(pauses)} ms" if pauses else "none"
    return f"{len(turns)} turns ({kinds}); {len(pauses)} pauses, {span}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stt-ms", default="100,300", help="Transcript latencies after a pause (ms).")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N turns.")
    parser.add_argument("--verbose", action="store_true", help="Print each turn's outcome under the policy.")
    args = parser.parse_args(argv)
    turns = build_corpus(args.limit)
    policy = TurnConfig(eager_eot_ms=EAGER_MS)
    print(f"machine: {machine()}")
    print(f"corpus: {corpus_summary(turns)}")
    print(
        f"policy: eager {policy.eager_eot_ms} ms, complete {policy.end_of_turn_complete_ms} ms, "
        f"statement {policy.end_of_turn_statement_ms} ms, unsure {policy.end_of_turn_unsure_ms} ms, "
        f"hold {policy.end_of_turn_hold_ms} ms, "
        f"no verdict {policy.end_of_turn_silence_ms} ms"
    )
    rows = [
        score(f"silence alone {ms} ms", turns, TurnConfig(end_of_turn_silence_ms=ms, eager_eot_ms=0), None)
        for ms in BASELINES_MS
    ]
    latencies = [int(s) for s in args.stt_ms.split(",") if s]
    for eager in (EAGER_MS, EAGER_BEFORE_MS):
        config = dataclasses.replace(policy, eager_eot_ms=eager)
        rows += [score(f"words + silence, eager {eager}, STT {stt}", turns, config, stt) for stt in latencies]
    before = dataclasses.replace(policy, end_of_turn_statement_ms=500)
    rows += [score(f"statements 500 ms (before), STT {stt}", turns, before, stt) for stt in latencies]
    print()
    print(f"{'policy':36} | {'cut-offs':>8} | {'mean delay ms':>13} | {'p90 delay ms':>12} | CPU %/call")
    print("-" * 93)
    for row in rows:
        print(
            f"{row.policy:36} | {row.cut_off_rate * 100:7.1f}% | {row.mean_delay_ms:13.0f} | "
            f"{row.p90_delay_ms:12.0f} | {row.cpu_percent:10.3f}"
        )
    us, n = judge_cpu_us(turns)
    print(f"\njudge CPU: {us:.1f} µs per verdict (mean over {n} transcripts x 200; target ≤ 1,000 µs)")
    print("target: ≤ 5 % cut-offs at a mean delay ≤ 400 ms (LiveKit Turn Detector v1: 672 ms at 5 %)")
    if args.verbose:
        stt = int(args.stt_ms.split(",")[0])
        print()
        for turn in turns:
            verdicts: list[str] = []
            outcome = run_turn(turn, policy, stt, verdicts)
            state = "CUT" if outcome.cut_off else f"{outcome.delay_ms} ms"
            print(f"{state:>8}  {turn.category:12} {turn.words_until(10**9)!r}")
            for v in verdicts:
                print(f"{'':22}{v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
