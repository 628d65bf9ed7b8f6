"""The caller's side of the call: the turn detector's events become the spine's triggers, with their data.

Inbound frames and the pause and overlap judges' late verdicts reach the machine by this one path, so a
turn event means the same whatever produced it and nothing is fired once the call has ended. A barge-in
carries what the table's guards need to tell a caller going on with their turn from an interruption: how
much of the reply to that turn had played when the speech began.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from dialogue.events import CallEvent, SpeechActivity
from dialogue.jobs import Jobs
from dialogue.machine import CallMachine, Trigger
from dialogue.overlap import OverlapJudge
from dialogue.preempt import Preemption
from dialogue.streamed_turns import StreamedTurns
from dialogue.turn import Turn
from dialogue.turn_end import PauseJudge
from media.turn_events import TurnEvent
from media.turns import BargeIn, SpeechDiscarded, SpeechEnded, SpeechPaused, SpeechStarted, TurnDetector

T = Trigger
_DETECTOR_TRIGGERS: Mapping[type, Trigger] = {
    SpeechStarted: T.SPEECH_STARTED,
    BargeIn: T.SPEECH_CONFIRMED,
    SpeechDiscarded: T.SPEECH_DISCARDED,
    SpeechPaused: T.SPEECH_PAUSED,
    SpeechEnded: T.SPEECH_ENDED,
}


class CallerTurnsHost(Protocol):
    call_sid: str
    stream_sid: str
    machine: CallMachine

    @property
    def ended(self) -> bool: ...

    def fire(self, trigger: Trigger, *, gen: int | None = None, **data: Any) -> bool: ...

    def emit(self, event: CallEvent) -> None: ...


class CallerTurns:
    """One per call; owns the pause and overlap judges, whose verdicts come back as turn events."""

    def __init__(
        self,
        host: CallerTurnsHost,
        *,
        detector: TurnDetector,
        jobs: Jobs,
        stream: StreamedTurns | None,
        preemption: Preemption,
    ) -> None:
        self._host = host
        self._detector = detector
        self._jobs = jobs
        self._stream = stream
        self._preemption = preemption
        self.pauses = PauseJudge(
            host.call_sid,
            detector,
            emit=host.emit,
            on_events=self.on_events,
            alive=self._alive,
            on_likely_over=self._likely_over,
        )
        self.overlaps = OverlapJudge(
            host.call_sid, detector, emit=host.emit, on_events=self.on_events, alive=self._alive
        )
        self._reply_started_ms: int | None = None
        """When the reply's first audio went out (stream ms): speech soon after may continue the turn."""
        self._log = structlog.get_logger().bind(call_sid=host.call_sid, stream_sid=host.stream_sid)

    def hear(self, ulaw: bytes) -> None:
        """One inbound frame, on the stream's own task: a frame that ends a turn event fires it right here."""
        if self._stream is not None:
            self._stream.feed(ulaw)
        self.on_events(self._detector.push(ulaw))
        if self._preemption.current is not None and self._detector.pause_verdict is None:
            self._preemption.drop("the caller went on")

    def reply_started(self) -> None:
        self._reply_started_ms = self._detector.now_ms

    def on_events(self, events: list[TurnEvent]) -> None:
        """Events of the detector, from a frame (``push``) or from a pause's verdict (``judge_pause``)."""
        for event in events:
            if self._host.ended:
                return
            self._on_event(event)

    def _on_event(self, event: TurnEvent) -> None:
        trigger = _DETECTOR_TRIGGERS[type(event)]
        if self._stream is not None:
            self._stream.on_event(event)
        if isinstance(event, SpeechStarted | SpeechDiscarded | SpeechEnded):
            self._host.emit(
                SpeechActivity(call_sid=self._host.call_sid, speaking=isinstance(event, SpeechStarted))
            )
        data: dict[str, Any] = {}
        if isinstance(event, BargeIn):
            data.update(self._barge_in_data(event))
            self._log.info("barge_in", at_ms=event.at_ms, work=str(self._host.machine.work), **data)
        if isinstance(event, SpeechEnded | SpeechPaused):
            data["utterance"] = event.utterance
            data["speech_end_ms"] = event.speech_end_ms
            data["speech_end"] = time.monotonic() - (event.at_ms - event.speech_end_ms) / 1000
        if isinstance(event, SpeechEnded):
            self.pauses.ended(event)
        self._host.fire(trigger, **data)
        if isinstance(event, SpeechEnded) and self._stream is not None:
            self._stream.segment_over()

    def _barge_in_data(self, event: BargeIn) -> dict[str, Any]:
        """What the table's guards read of an interruption: why, and how much of the reply to the caller's
        turn had played when it began (negative: before the reply; None: the bot is not answering a turn)."""
        heard = None
        job = self._jobs.job
        if isinstance(job, Turn):
            started = self._reply_started_ms if job.announced else None
            heard = event.onset_ms - (started if started is not None else self._detector.now_ms)
        return {
            "reason": event.reason,
            "claims_floor": event.claims_floor,
            "onset_ms": event.onset_ms,
            "reply_heard_ms": heard,
            "continue_within_ms": self._detector.config.continue_within_ms,
        }

    def _likely_over(self, transcript: str) -> None:
        self._host.fire(T.TURN_LIKELY_OVER, transcript=transcript)

    def _alive(self) -> bool:
        return not self._host.ended
