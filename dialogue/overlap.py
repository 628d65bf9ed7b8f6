"""Speech over the bot's voice: a backchannel it talks on through, or an interruption that silences it.

At the onset the floor machine ducks the bot (``duck_output``); at the overlap's first pause the detector
offers its words (``SpeechPaused``), the session transcribes them speculatively, and this judge reads the
transcript with the German backchannel rule (``media.backchannels``). "ja", "mhm", "genau" leave the bot
talking: the detector gives the floor back after ``backchannel_gap_ms`` and the level is restored.
"Stopp", "Moment", "Nein" or any content confirm the interruption at once (``TurnDetector.confirm``), long
before ``barge_in_ms`` of speech would, and the bot's ``clear`` follows. Speech that never pauses is still
confirmed by its duration. Every verdict is logged and published (``TurnDecision``) for the console.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from dialogue.events import CallError, CallEvent, TurnDecision
from media.backchannels import Overlap, judge_overlap
from media.speech import Transcript
from media.turns import TurnDetector, TurnEvent

Prefetch = asyncio.Task[Transcript | Exception]


class OverlapJudge:
    """One per call: judges the words of each pause in speech over the bot."""

    def __init__(
        self,
        call_sid: str,
        detector: TurnDetector,
        *,
        emit: Callable[[CallEvent], None],
        on_events: Callable[[list[TurnEvent]], None],
        alive: Callable[[], bool],
    ) -> None:
        self._call_sid = call_sid
        self._detector = detector
        self._emit = emit
        self._on_events = on_events
        self._alive = alive
        self.verdicts: list[tuple[int, Overlap]] = []
        """(speech end ms, verdict) of every judged overlap, for tests and the bench."""
        self._log = structlog.get_logger().bind(call_sid=call_sid)

    def watch(self, prefetch: Prefetch, speech_end_ms: int) -> None:
        """Judge the overlap that paused at ``speech_end_ms`` once its words are in (a done-callback)."""
        prefetch.add_done_callback(lambda task: self._judge(task, speech_end_ms))

    def _judge(self, task: Prefetch, speech_end_ms: int) -> None:
        if task.cancelled() or not self._alive():
            return
        try:
            self._apply(task.result(), speech_end_ms)
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the call; duration decides
            self._log.exception("overlap_judge_failed")
            self._emit(CallError(call_sid=self._call_sid, stage="session", detail=f"overlap judge: {exc!r}"))

    def _apply(self, result: Transcript | Exception, speech_end_ms: int) -> None:
        if isinstance(result, Exception):
            self._log.info("overlap_unjudged", reason="transcript failed")
            return
        verdict = judge_overlap(result.text)
        if verdict is None:
            self._log.info("overlap_unjudged", reason="no words")
            return
        events: list[TurnEvent] = []
        if verdict.kind is Overlap.INTERRUPTION:
            events = self._detector.confirm(speech_end_ms, verdict.reason, claims_floor=verdict.claims_floor)
        late_ms = self._detector.now_ms - speech_end_ms
        self.verdicts.append((speech_end_ms, verdict.kind))
        self._log.info(
            "overlap_judged",
            verdict=str(verdict.kind),
            reason=verdict.reason,
            after_speech_ms=late_ms,
            confirmed=bool(events),
        )
        self._emit(
            TurnDecision(
                call_sid=self._call_sid,
                verdict=str(verdict.kind),
                reason=f"{verdict.reason}, {late_ms} ms after the words",
            )
        )
        self._on_events(events)
