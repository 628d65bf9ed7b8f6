"""The bot's fixed pieces of work: greeting, reprompts, goodbyes, transfer and hand-over.

Each runs as the call's current work (a task a barge-in or hang-up cancels). The lines come from the
phrase catalogue and are usually cached audio, so they play at once and even when TTS is down. A mixin of
``CallSession``: the attributes and methods listed first are the session's, declared here for the type
checker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from dialogue.config import CallDeps, SessionConfig
from dialogue.events import BotSentence, CallEvent, TranscriptEvent
from dialogue.machine import CallMachine, CallState
from dialogue.speaker import Speaker, Spoken
from dialogue.turn import TurnResult
from media.errors import ProviderError
from media.playback import PlaybackTracker
from media.transport import CallControl

S = CallState


class FixedLines:
    call_sid: str
    speaker: Speaker
    tracker: PlaybackTracker
    machine: CallMachine
    _deps: CallDeps
    _config: SessionConfig
    _control: CallControl
    _log: Any
    _turn: int
    _reprompts: int
    _failures: int
    _closing: bool
    _end_reason: str
    _speech_turn: int
    _work_result: TurnResult | None
    _reprompt: asyncio.Task[Any] | None

    async def advance(self, trigger: str) -> bool:
        raise NotImplementedError

    def advance_soon(self, trigger: str) -> None:
        raise NotImplementedError

    def emit(self, event: CallEvent) -> None:
        raise NotImplementedError

    def provider_failed(self, stage: str, exc: ProviderError | TimeoutError) -> bool:
        raise NotImplementedError

    async def hangup(self, reason: str) -> None:
        raise NotImplementedError

    def disarm_reprompt(self) -> None:
        raise NotImplementedError

    def _replace_work(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        raise NotImplementedError

    def _next_aux(self) -> int:
        raise NotImplementedError

    async def _greet(self) -> None:
        spoken = await self._speak_line(self._deps.lines.greeting, "greeting", turn=0, announce=False)
        if spoken is not None:
            await self._line_heard(spoken, self._deps.lines.greeting, turn=0)
        await self.advance("greeting_done")

    async def _say_alone(self, text: str, tag: str) -> None:
        """Bot speech outside a caller turn (reprompt, repeat, fallback): speak, wait, back to listening."""
        spoken = await self._speak_line(text, tag)
        if spoken is None:
            await self.advance("reply_failed")
            return
        await self._line_heard(spoken, text)
        await self.advance("playback_done")

    async def _speak_line(
        self, text: str, tag: str, *, turn: int | None = None, announce: bool = True
    ) -> Spoken | None:
        """Queues one fixed line; None when no voice works (the caller of this decides how to go on)."""
        key = self._next_aux() if turn is None else turn
        self._speech_turn = key
        self.emit(BotSentence(call_sid=self.call_sid, text=text, turn=self._turn))
        try:
            spoken = await self.speaker.say(
                text,
                tag=tag,
                turn=key,
                on_first_audio=(lambda: self.advance_soon("reply_started")) if announce else None,
            )
        except ProviderError as exc:
            self.provider_failed("tts", exc)
            return None
        self._work_result = TurnResult(spoken=[(spoken, text)])
        return spoken

    async def _line_heard(self, spoken: Spoken, text: str, *, turn: int | None = None) -> None:
        await self.speaker.played(spoken.mark)
        self.tracker.forget(self._speech_turn)
        self.emit(
            TranscriptEvent(
                call_sid=self.call_sid, role="bot", text=text, turn=self._turn if turn is None else turn
            )
        )

    async def _reprompt_after_silence(self) -> None:
        await asyncio.sleep(self._config.reprompt_after_s)
        if self.machine.state is not S.LISTENING:
            return
        self._reprompts += 1
        self._reprompt = None
        if self._reprompts > self._config.max_reprompts:
            self._replace_work(self._goodbye("caller_silent"), "goodbye")
        else:
            prompts = self._deps.lines.reprompts
            text = prompts[min(self._reprompts, len(prompts)) - 1]
            self._replace_work(self._say_alone(text, f"reprompt{self._reprompts}"), "reprompt")

    async def _goodbye(self, reason: str) -> None:
        self._closing = True
        self.disarm_reprompt()
        lines = self._deps.lines
        text = lines.goodbye_silence if reason == "caller_silent" else lines.goodbye
        spoken = await self._speak_line(text, "bye")
        if spoken is not None:
            await self._line_heard(spoken, text)
        self._end_reason = self._end_reason or reason
        await self._control.hangup(self.call_sid)
        await self.hangup(reason)

    async def _transfer(self) -> None:
        self._closing = True
        self.disarm_reprompt()
        number = self._config.transfer_number
        text = self._deps.lines.handover if number else self._deps.lines.transfer_unavailable
        spoken = await self._speak_line(text, "handover")
        if spoken is not None:
            await self._line_heard(spoken, text)
        if number:
            self._end_reason = "transferred"
            if await self._control.transfer(self.call_sid, number):
                await self.hangup("transferred")
                return
            self._end_reason = ""
        self._closing = False
        if number:  # the transport cannot transfer (e.g. a browser call): say so and carry on
            await self._say_alone(self._deps.lines.transfer_unavailable, "handover")
        else:
            await self.advance("playback_done")

    async def _handover(self) -> None:
        self._log.warning("handover_after_failures", failures=self._failures)
        if self._config.transfer_number:
            await self._transfer()
        else:
            await self._goodbye("provider_failures")

    async def _watchdog(self) -> None:
        await asyncio.sleep(self._config.max_call_duration_s)
        self._log.info("max_call_duration_reached", seconds=self._config.max_call_duration_s)
        self._replace_work(self._goodbye("max_duration"), "goodbye")
