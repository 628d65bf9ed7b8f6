"""When the caller's turn is over: the words heard at each pause, judged, set how long the pause may last.

The detector offers every pause (``SpeechPaused``) and the session transcribes it speculatively. When that
transcript arrives, the German end-of-turn judge (``media.endpointing``) reads it, and its verdict goes
back to the detector (``TurnDetector.judge_pause``): a complete sentence ends the turn after a short
silence, an unfinished one ("Ich rufe an wegen …") is listened through for up to the hold. The detector
decides on its own stream clock, so a verdict about words the caller has since added to is simply stale.
A transcript that failed or holds no words gives no verdict: the silence fallback decides, as it does
while a verdict is still on its way.

Every decision is logged and published (``TurnDecision``), so a cut-off or a slow answer can be read in
the console with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from dialogue.events import CallError, CallEvent, TurnDecision
from dialogue.turn import is_noise
from media.endpointing import Completion, judge_turn
from media.speech import Transcript
from media.turns import SpeechEnded, TurnDetector, TurnEvent

Prefetch = asyncio.Task[Transcript | Exception]
LIKELY_OVER = frozenset({Completion.COMPLETE, Completion.STATEMENT})
"""Verdicts on which a preemptive reply starts while the silence is still counted (``dialogue.preempt``)."""


class PauseJudge:
    """One per call: judges the speculative transcript of each pause and hands the detector's answer on."""

    def __init__(
        self,
        call_sid: str,
        detector: TurnDetector,
        *,
        emit: Callable[[CallEvent], None],
        on_events: Callable[[list[TurnEvent]], None],
        alive: Callable[[], bool],
        on_likely_over: Callable[[str], None] | None = None,
    ) -> None:
        self._call_sid = call_sid
        self._detector = detector
        self._emit = emit
        self._on_events = on_events
        self._alive = alive
        self._likely_over = on_likely_over
        """Gets the words of a pause judged complete while its silence still runs: the reply may start."""
        self._log = structlog.get_logger().bind(call_sid=call_sid)

    def watch(self, prefetch: Prefetch, speech_end_ms: int) -> None:
        """Judge the pause that ended the caller's speech at ``speech_end_ms`` once its transcript is in.

        A done-callback, not a task: nothing is left to cancel at hang-up, and a prefetch that was
        cancelled (the caller spoke on, the call ended) is never judged.
        """
        prefetch.add_done_callback(lambda task: self._judge(task, speech_end_ms))

    def ended(self, event: SpeechEnded) -> None:
        verdict = str(event.verdict) if event.verdict is not None else "silence"
        self._log.info("turn_ended", verdict=verdict, reason=event.reason, waited_ms=event.waited_ms)
        self._emit(
            TurnDecision(
                call_sid=self._call_sid,
                ended=True,
                verdict=verdict,
                reason=event.reason,
                hold_ms=event.waited_ms,
                waited_ms=event.waited_ms,
            )
        )

    def _judge(self, task: Prefetch, speech_end_ms: int) -> None:
        if task.cancelled() or not self._alive():
            return
        try:
            self._apply(task.result(), speech_end_ms)
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the call; the silence decides
            self._log.exception("turn_pause_judge_failed")
            self._emit(CallError(call_sid=self._call_sid, stage="session", detail=f"pause judge: {exc!r}"))

    def _apply(self, result: Transcript | Exception, speech_end_ms: int) -> None:
        if isinstance(result, Exception):
            self._log.info("turn_pause_unjudged", reason="speculative transcript failed")
            return
        text = result.text.strip()
        if is_noise(text):
            self._log.info("turn_pause_unjudged", reason="no words")
            return
        verdict = judge_turn(text)
        events = self._detector.judge_pause(verdict, speech_end_ms)
        applied = bool(events) or self._detector.pause_verdict is verdict
        hold_ms = self._detector.config.silence_for(verdict.kind)
        self._log.info(
            "turn_pause_judged",
            verdict=str(verdict.kind),
            reason=verdict.reason,
            hold_ms=hold_ms,
            stale=not applied,
        )
        if not applied:
            return  # the caller spoke on (or the turn already ended): these words are no longer the turn's
        self._emit(
            TurnDecision(
                call_sid=self._call_sid, verdict=str(verdict.kind), reason=verdict.reason, hold_ms=hold_ms
            )
        )
        if not events and verdict.kind in LIKELY_OVER and self._likely_over is not None:
            self._likely_over(text)
        self._on_events(events)
