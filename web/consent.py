"""Recording consent: the caller is told at the start and can object at any time, by voice or by keypad.

Recording the spoken word without consent is an offence in Germany (§ 201 StGB), and Art. 13 GDPR requires
telling the caller. So with ``RECORD_CALLS`` on, the greeting carries a notice that names how to object,
and a watcher on the call's events stops the recorder and deletes what it wrote the moment the caller says
one of the objection phrases or presses the objection digit. The watcher sits between the call session and
the process's event sinks, so the session itself knows nothing of consent.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import structlog

from dialogue.events import CallEvent, EventSink, ProtocolEvent, TranscriptEvent
from dialogue.phrases import PhraseCatalogue
from media.recording import StereoRecorder

log = structlog.get_logger()

RECORDING_STOPPED = "recording_stopped"
PROMPT_NOTE = (
    "Dieses Gespräch wird aufgezeichnet, und der Anrufer wurde darauf hingewiesen. Widerspricht er der "
    "Aufzeichnung, ist sie bereits beendet und gelöscht: Bestätigen Sie ihm das in einem kurzen Satz."
)
"""Appended to the system prompt when recording: the language model confirms an objection in words (the
watcher has already acted on it; the scripted FAQ dialogue does not say it)."""


def with_recording_notice(catalogue: PhraseCatalogue, notice: str) -> PhraseCatalogue:
    """The greeting followed by the notice: one phrase, so it is synthesized ahead and cached like it."""
    notice = notice.strip()
    if not notice or notice in catalogue.greeting:
        return catalogue
    return dataclasses.replace(catalogue, greeting=f"{catalogue.greeting.rstrip()} {notice}")


def _normal(text: str) -> str:
    """Lower case, umlauts folded, punctuation gone: STT may write "Nicht aufzeichnen!" or "auf-zeichnen"."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", text.replace("-", "")).strip()


class ConsentWatch:
    """One per recorded call: passes every event on, and discards the recording on an objection."""

    def __init__(
        self,
        inner: EventSink,
        recorder: StereoRecorder,
        *,
        call_sid: str,
        phrases: tuple[str, ...],
        digit: str,
    ) -> None:
        self._inner = inner
        self._recorder = recorder
        self._call_sid = call_sid
        self._phrases = tuple(p for p in (_normal(p) for p in phrases) if p)
        self._digit = digit
        self.objected_by: str | None = None

    def publish(self, event: CallEvent) -> None:
        self._inner.publish(event)
        if self.objected_by is not None:
            return
        if isinstance(event, TranscriptEvent) and event.role == "caller" and self._objects(event.text):
            self._stop("voice")
        elif (
            isinstance(event, ProtocolEvent)
            and event.name == "dtmf"
            and self._digit
            and event.detail == self._digit
        ):
            self._stop("keypad")

    def _objects(self, text: str) -> bool:
        said = f" {_normal(text)} "
        return any(f" {phrase} " in said for phrase in self._phrases)

    def _stop(self, how: str) -> None:
        self.objected_by = how
        try:
            self._recorder.discard()
        except OSError:
            log.exception("recording_discard_failed", call_sid=self._call_sid)
        log.info("recording_stopped", call_sid=self._call_sid, objected_by=how)
        self._inner.publish(
            ProtocolEvent(
                call_sid=self._call_sid,
                name=RECORDING_STOPPED,
                detail=f"caller objected ({how}): recording stopped and deleted",
            )
        )
