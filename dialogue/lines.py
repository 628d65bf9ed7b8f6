"""The bot's fixed pieces of work: greeting, reprompts, goodbyes, transfer and hand-over.

Each runs as the call's current job (a task a barge-in or hang-up cancels). The lines come from the phrase
catalogue and are usually cached audio, so they play at once and even when TTS is down. The session is
reached only through the narrow ``LineHost``; the voice and the phone control are handed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import structlog

from dialogue.events import BotSentence, CallEvent, TranscriptEvent
from dialogue.machine import Trigger
from dialogue.phrases import PhraseCatalogue
from dialogue.speaker import Spoken
from dialogue.turn import Job
from dialogue.voice import BotVoice
from media.errors import ProviderError
from media.transport import CallControl


class LineHost(Protocol):
    call_sid: str
    closing: bool
    """True once the bot is saying goodbye or handing over: no reprompts, no new work from DTMF."""

    @property
    def turn_number(self) -> int: ...

    def fire(self, trigger: Trigger, *, gen: int | None = None, **data: Any) -> bool: ...

    def announce(self, job: Job) -> Callable[[], None]: ...

    def emit(self, event: CallEvent) -> None: ...

    def provider_failed(self, stage: str, exc: ProviderError) -> bool: ...

    def ending(self, reason: str) -> None:
        """Records why the call ends before the stream closes (its close reports a reason of its own);
        the first reason wins, an empty one takes it back."""

    async def hangup(self, reason: str) -> None: ...


class ScriptedLines:
    def __init__(
        self,
        host: LineHost,
        voice: BotVoice,
        lines: PhraseCatalogue,
        control: CallControl,
        *,
        transfer_number: str,
    ) -> None:
        self._host = host
        self._voice = voice
        self.lines = lines
        self._control = control
        self._transfer_number = transfer_number
        self._log = structlog.get_logger()

    async def greet(self, job: Job) -> None:
        job.announced = True  # the call starts speaking: no transition announces it
        spoken = await self._speak(job, self.lines.greeting, "greeting")
        if spoken is not None:
            await self._heard(job, spoken, self.lines.greeting, turn=0)
        self._host.fire(Trigger.PLAYBACK_DONE, gen=job.gen)

    async def say(self, job: Job, text: str, tag: str) -> None:
        """Bot speech outside a caller turn (reprompt, repeat, fallback): speak, wait, back to listening."""
        spoken = await self._speak(job, text, tag)
        if spoken is None:
            self._host.fire(Trigger.REPLY_FAILED, gen=job.gen)
            return
        await self._heard(job, spoken, text)
        self._host.fire(Trigger.PLAYBACK_DONE, gen=job.gen)

    def reprompt_text(self, n: int) -> str:
        prompts = self.lines.reprompts
        return prompts[min(n, len(prompts)) - 1]

    async def goodbye(self, job: Job, reason: str) -> None:
        self._host.closing = True
        text = self.lines.goodbye_silence if reason == "caller_silent" else self.lines.goodbye
        spoken = await self._speak(job, text, "bye")
        if spoken is not None:
            await self._heard(job, spoken, text)
        self._host.ending(reason)
        try:
            await self._control.hangup(self._host.call_sid)
        finally:
            await self._host.hangup(reason)

    async def transfer(self, job: Job) -> None:
        self._host.closing = True
        number = self._transfer_number
        text = self.lines.handover if number else self.lines.transfer_unavailable
        spoken = await self._speak(job, text, "handover")
        if spoken is not None:
            await self._heard(job, spoken, text)
        if number:
            self._host.ending("transferred")
            if await self._control.transfer(self._host.call_sid, number):
                await self._host.hangup("transferred")
                return
            self._host.ending("")
        self._host.closing = False
        if number:  # the transport cannot transfer (e.g. a browser call): say so and carry on
            await self.say(job, self.lines.transfer_unavailable, "handover")
        else:
            self._host.fire(Trigger.PLAYBACK_DONE, gen=job.gen)

    async def handover(self, job: Job, failures: int) -> None:
        self._log.warning("handover_after_failures", failures=failures)
        if self._transfer_number:
            await self.transfer(job)
        else:
            await self.goodbye(job, "provider_failures")

    async def _speak(self, job: Job, text: str, tag: str) -> Spoken | None:
        """Queues one fixed line; None when no voice works (the caller of this decides how to go on)."""
        self._host.emit(BotSentence(call_sid=self._host.call_sid, text=text, turn=self._host.turn_number))
        try:
            spoken = await self._voice.say(
                text, tag=tag, key=job.key, on_first_audio=self._host.announce(job)
            )
        except ProviderError as exc:
            self._host.provider_failed("tts", exc)
            return None
        job.spoken.append((spoken, text))
        return spoken

    async def _heard(self, job: Job, spoken: Spoken, text: str, *, turn: int | None = None) -> None:
        await self._voice.played(spoken)
        self._voice.forget(job.key)
        number = self._host.turn_number if turn is None else turn
        self._host.emit(TranscriptEvent(call_sid=self._host.call_sid, role="bot", text=text, turn=number))
