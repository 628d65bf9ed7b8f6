"""One phone call: receives the media stream, drives the state machine, owns every task of the call.

Inbound audio is analysed as it arrives (cheap), and the rare frame that ends a turn event fires its
transition right there on the stream's own task: the machine sees events in arrival order, no callback ever
awaits real work, and a barge-in's ``clear`` waits for no other task. Hanging up cancels every task
the session owns; ``active_tasks`` lets tests prove nothing is left running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import structlog

from dialogue.config import CallDeps, Recorder, SessionConfig
from dialogue.conversation import Conversation
from dialogue.events import (
    CallEnded,
    CallError,
    CallEvent,
    CallStarted,
    EventSink,
    ProtocolEvent,
    SpeechActivity,
    StateChanged,
    TranscriptEvent,
    TurnLatency,
)
from dialogue.latency import TurnClock
from dialogue.lines import FixedLines
from dialogue.machine import CallMachine, CallState
from dialogue.speaker import Speaker
from dialogue.tasks import CallTasks
from dialogue.tools import Outcome
from dialogue.turn import TurnResult, TurnRunner, speculative_transcript
from media.errors import ProviderError
from media.playback import PlaybackTracker
from media.playout import Playout
from media.privacy import mask_phone
from media.speech import Transcript, Utterance
from media.transport import CallControl, CallTransport, StreamStart
from media.turns import (
    BargeIn,
    SpeechDiscarded,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    TurnDetector,
    TurnEvent,
)

S = CallState
_RESUME_AFTER = {
    "greeting_done": S.LISTENING,
    "transcript_empty": S.LISTENING,
    "transcript_ready": S.THINKING,
    "reply_started": S.SPEAKING,
    "playback_done": S.LISTENING,
    "reply_failed": S.LISTENING,
}
"""Progress a paused call made meanwhile: a false barge-in resumes into the state the work has reached."""


class CallSession(FixedLines):
    """Implements ``media.transport.StreamHandler`` and the machine's effects (``dialogue.machine``)."""

    def __init__(
        self,
        *,
        start: StreamStart,
        transport: CallTransport,
        control: CallControl,
        deps: CallDeps,
        config: SessionConfig,
        sink: EventSink,
        recorder: Recorder | None = None,
    ) -> None:
        self.call_sid = start.call_sid
        self.stream_sid = start.stream_sid
        self._transport = transport
        self._control = control
        self._deps = deps
        self._config = config
        self._sink = sink
        self._recorder = recorder
        self._log = structlog.get_logger().bind(call_sid=self.call_sid, stream_sid=self.stream_sid)
        self.machine = CallMachine(self)
        self.detector = TurnDetector(config.turn)
        self.playout = Playout(transport, lead_ms=config.playout_lead_ms, on_sent=self._on_sent)
        self.tracker = PlaybackTracker()
        self.speaker = Speaker(
            self.playout,
            deps.tts,
            cached=deps.cached_audio,
            backup=deps.backup_tts,
            tracker=self.tracker,
            first_byte_timeout_s=config.tts_first_byte_timeout_s,
        )
        self.conversation = Conversation(deps.system_prompt, token_budget=config.history_token_budget)
        self._runner = TurnRunner(
            self,
            stt=deps.stt,
            llm=deps.llm,
            speaker=self.speaker,
            conversation=self.conversation,
            tools=deps.tools,
            budgets=config.budgets,
            fallback_stt=deps.lines.stt_fallback,
            fallback_llm=deps.lines.llm_fallback,
        )
        self._tasks = CallTasks(self.call_sid, on_failure=self._task_failed)
        self._work: asyncio.Task[Any] | None = None
        """The bot's current piece of work (greeting, turn, reprompt, goodbye): what a barge-in cancels."""
        self._work_result: TurnResult | None = None
        self._reprompt: asyncio.Task[Any] | None = None
        self._resume_state = S.SPEAKING
        self._interrupted_from = S.SPEAKING
        self._next_utterance: Utterance | None = None
        self._held_pcm = b""
        self._last_utterance_pcm = b""
        self._prefetch: tuple[bytes, asyncio.Task[Transcript | None]] | None = None
        """A transcription started at a pause, with the exact audio it transcribes."""
        self._turn = 0
        self._speech_turn = 0
        """Key of the bot speech playing in the playback tracker (0 greeting, N caller turn N, else aux)."""
        self._aux = 0
        self._reprompts = 0
        self._failures = 0
        self._closing = False
        self._ended = False
        self._end_reason = ""
        self._shutdown: asyncio.Task[None] | None = None
        self._hangup: asyncio.Task[bool] | None = None
        self._started = time.monotonic()
        self._speech_end_mono = 0.0

    # ===== StreamHandler ====================================================================================
    async def on_start(self, start: StreamStart) -> None:
        structlog.contextvars.bind_contextvars(call_sid=self.call_sid, stream_sid=self.stream_sid)
        self.emit(
            CallStarted(
                call_sid=self.call_sid,
                stream_sid=self.stream_sid,
                caller=mask_phone(start.custom_parameters.get("caller", "")),
                transport=start.transport,
            )
        )
        self._log.info("call_started", transport=start.transport)
        self.detector.bot_speaking = True  # the greeting starts now; no transition announces it
        self._spawn(self.playout.run(), "playout")
        self._spawn(self._watchdog(), "watchdog")
        self._work = self._spawn(self._greet(), "greeting")

    async def on_audio(self, ulaw: bytes) -> None:
        if self._ended:
            return
        if self._recorder is not None:
            self._recorder.caller(ulaw)
        for event in self.detector.push(ulaw):
            await self._on_turn_event(event)

    async def on_dtmf(self, digit: str) -> None:
        self.emit(ProtocolEvent(call_sid=self.call_sid, name="dtmf", detail=digit))
        await self._on_dtmf_action(digit)

    async def on_mark(self, name: str) -> None:
        result = self.tracker.on_echo(name)
        self.speaker.on_echo(name)
        verdict = "heard" if result.heard else "flushed"
        self.emit(ProtocolEvent(call_sid=self.call_sid, name="mark", detail=f"{name} {verdict}"))

    async def on_stop(self, reason: str) -> None:
        await self.hangup(reason)

    # ===== public control ===================================================================================
    async def hangup(self, reason: str) -> None:
        """Ends the call from any state and waits until every task of the call has finished.

        The first reason wins (the bot's own goodbye closes the stream, which reports ``bot_closed`` after).
        The transition runs in its own task: a caller cancelled meanwhile (a closing socket) cannot leave it
        half done.
        """
        self._end_reason = self._end_reason or reason
        if self._hangup is None:
            self._hangup = asyncio.get_running_loop().create_task(self.machine.fire("hangup"), name="hangup")
        await asyncio.shield(self._hangup)
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)

    def active_tasks(self) -> int:
        """Tasks of this call still running, shutdown included: zero means the call left nothing behind."""
        running = self._tasks.active
        return running + (1 if self._shutdown is not None and not self._shutdown.done() else 0)

    @property
    def state(self) -> CallState:
        return self.machine.state

    # ===== TurnHost =========================================================================================
    async def advance(self, trigger: str) -> bool:
        if self.machine.state is S.BARGE_IN and trigger in _RESUME_AFTER:
            self._resume_state = _RESUME_AFTER[trigger]
            return False
        return await self.machine.fire(trigger)

    def advance_soon(self, trigger: str) -> None:
        self._spawn(self.advance(trigger), trigger)

    def emit(self, event: CallEvent) -> None:
        self._sink.publish(event)

    def provider_failed(self, stage: str, exc: ProviderError | TimeoutError) -> bool:
        self._failures += 1
        detail = exc.detail if isinstance(exc, ProviderError) else f"no answer within the {stage} budget"
        self._log.warning("provider_failed", stage=stage, detail=detail, failures=self._failures)
        self.emit(CallError(call_sid=self.call_sid, stage=stage, detail=detail))
        return self._failures >= self._config.failures_before_handover

    def provider_ok(self) -> None:
        self._failures = 0

    # ===== MachineOwner =====================================================================================
    def on_transition(self, trigger: str, source: CallState, dest: CallState) -> None:
        if dest is not S.BARGE_IN:
            self.detector.bot_speaking = dest in (S.GREETING, S.SPEAKING)
        self._log.info("state_changed", trigger=trigger, source=str(source), dest=str(dest))
        self.emit(
            StateChanged(
                call_sid=self.call_sid,
                source=str(source),
                dest=str(dest),
                trigger=trigger,
                monotonic=self.machine.log[-1].monotonic if self.machine.log else time.monotonic(),
            )
        )

    # conditions (false_barge_in resumes into the state the paused work has reached)
    def resumes_greeting(self) -> bool:
        return self._resume_state is S.GREETING

    def resumes_speaking(self) -> bool:
        return self._resume_state is S.SPEAKING

    def resumes_thinking(self) -> bool:
        return self._resume_state is S.THINKING

    def resumes_transcribing(self) -> bool:
        return self._resume_state is S.TRANSCRIBING

    # effects: synchronous, they only start or cancel work
    def arm_reprompt(self) -> None:
        self.disarm_reprompt()
        if not self._closing:
            self._reprompt = self._spawn(self._reprompt_after_silence(), "reprompt")

    def disarm_reprompt(self) -> None:
        if self._reprompt is not None and self._reprompt is not asyncio.current_task():
            self._reprompt.cancel()
        self._reprompt = None

    def pause_output(self) -> None:
        self.playout.pause()
        self.disarm_reprompt()

    def resume_output(self) -> None:
        self.playout.resume()
        if self.machine.state is S.LISTENING:
            self.arm_reprompt()
        elif self._work is None or self._work.done():
            # The work finished while paused (its trigger was deferred): move on now.
            follow = "greeting_done" if self.machine.state is S.GREETING else "playback_done"
            self.advance_soon(follow)

    def interrupt_turn(self) -> None:
        self._clear_output()
        self.emit(
            ProtocolEvent(
                call_sid=self.call_sid, name="clear", detail=f"barge-in in {self._interrupted_from}"
            )
        )
        result = self._work_result
        self._cancel_work()
        if self._interrupted_from in (S.SPEAKING, S.GREETING) and result is not None and result.spoken:
            self._record_interrupted()
        if self._interrupted_from is S.TRANSCRIBING and result is not None and not result.transcript:
            self._held_pcm = self._last_utterance_pcm
        self.detector.bot_speaking = False

    def start_turn(self) -> None:
        utterance = self._next_utterance
        self._next_utterance = None
        prefetch, self._prefetch = self._prefetch, None
        if utterance is None:
            return
        prefetched = None
        if prefetch is not None and prefetch[0] == utterance.pcm16 and not self._held_pcm:
            prefetched = prefetch[1]  # the caller stayed silent: the speculative transcript is this turn's
        elif prefetch is not None:
            prefetch[1].cancel()
        if self._held_pcm:
            utterance = Utterance(self._held_pcm + utterance.pcm16, utterance.sample_rate)
            self._held_pcm = b""
        self._last_utterance_pcm = utterance.pcm16
        self._turn += 1
        self._speech_turn = self._turn
        self._reprompts = 0
        clock = TurnClock(speech_end=self._speech_end_mono)
        result = TurnResult()
        self._work_result = result
        self._work = self._spawn(
            self._run_turn(utterance, self._turn, clock, result, prefetched), f"turn-{self._turn}"
        )

    def end_call(self) -> None:
        self._ended = True
        self._cancel_work()
        self.disarm_reprompt()
        cancelled = self._tasks.cancel_all()
        self.speaker.cancel_all()
        self._shutdown = asyncio.get_running_loop().create_task(self._finish(cancelled))

    # ===== tasks ============================================================================================
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    def _task_failed(self, name: str, exc: BaseException) -> None:
        self.emit(CallError(call_sid=self.call_sid, stage="session", detail=f"{name}: {exc!r}"))

    def _clear_output(self) -> None:
        """Silence the bot now: drop queued audio, clear the far end's buffer, and account for what was lost
        (unsent marks released, pending ones flushed, unplayed audio out of the recording)."""
        self.speaker.release(self.playout.flush())
        self.tracker.on_clear()
        if self._recorder is not None:
            self._recorder.clear()

    def _cancel_work(self) -> None:
        if self._work is not None and self._work is not asyncio.current_task():
            self._work.cancel()
        self._work = None

    async def _on_turn_event(self, event: TurnEvent) -> None:
        state = self.machine.state
        if isinstance(event, SpeechStarted):
            self.emit(SpeechActivity(call_sid=self.call_sid, speaking=True))
            if state in (S.GREETING, S.SPEAKING, S.THINKING, S.TRANSCRIBING):
                self._resume_state = self._interrupted_from = state
            if state is not S.BARGE_IN:
                await self.machine.fire("speech_started")
        elif isinstance(event, BargeIn):
            if state is S.BARGE_IN:
                self._log.info("barge_in", at_ms=event.at_ms, interrupted=str(self._interrupted_from))
                await self.machine.fire("barge_in_confirmed")
        elif isinstance(event, SpeechDiscarded):
            self.emit(SpeechActivity(call_sid=self.call_sid, speaking=False))
            if state is S.BARGE_IN:
                await self.machine.fire("false_barge_in")
        elif isinstance(event, SpeechPaused):
            if state is S.LISTENING and self._config.speculative_stt:
                self._drop_prefetch()
                task = self._spawn(speculative_transcript(self._deps.stt, event.utterance), "prefetch-stt")
                self._prefetch = (event.utterance.pcm16, task)
        elif isinstance(event, SpeechEnded):
            self.emit(SpeechActivity(call_sid=self.call_sid, speaking=False))
            self._speech_end_mono = time.monotonic() - (event.at_ms - event.speech_end_ms) / 1000
            if state is S.BARGE_IN and self._interrupted_from in (S.GREETING, S.SPEAKING):
                await self.machine.fire("false_barge_in")  # too short to interrupt: a backchannel
                return
            if state is S.BARGE_IN:  # the caller went on talking before the bot said anything
                await self.machine.fire("barge_in_confirmed")
            if self.machine.state is S.LISTENING:
                self._next_utterance = event.utterance
                await self.machine.fire("speech_ended")

    async def _on_dtmf_action(self, digit: str) -> None:
        action = self._config.dtmf_actions.get(digit)
        self._log.info("dtmf", digit=digit, action=action)
        if action is None or self._closing:
            return
        if action == "transfer":
            self._replace_work(self._transfer(), "transfer")
        elif action == "hangup":
            self._replace_work(self._goodbye("dtmf"), "goodbye")
        elif action == "repeat":
            last = next((m.content for m in reversed(self.conversation.turns) if m.role == "assistant"), "")
            if last:
                self._replace_work(self._say_alone(last, "repeat"), "repeat")

    def _replace_work(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self.playout.is_playing():
            self._clear_output()
        self._cancel_work()
        self._work_result = None
        self._work = self._spawn(coro, name)

    # ===== the bot's pieces of work =========================================================================
    async def _run_turn(
        self,
        utterance: Utterance,
        turn: int,
        clock: TurnClock,
        result: TurnResult,
        prefetched: asyncio.Task[Transcript | None] | None = None,
    ) -> None:
        try:
            await self._runner.run(utterance, turn, clock, result, prefetched=prefetched)
            for spoken, _text in result.spoken:
                await self.speaker.played(spoken.mark)
            if result.spoken:
                clock.mark("playback_done")
                self.emit(
                    TranscriptEvent(call_sid=self.call_sid, role="bot", text=_joined(result), turn=turn)
                )
                self.tracker.forget(turn)
        finally:
            self._publish_latency(turn, clock)
        if result.handover:
            await self._handover()
        elif result.outcome is Outcome.END_CALL:
            await self._goodbye("bot_ended")
        elif result.outcome is Outcome.TRANSFER:
            await self._transfer()
        elif result.spoken:
            await self.advance("playback_done")
        elif self.machine.state in (S.THINKING, S.TRANSCRIBING):
            # Nothing was said (empty reply, or every voice failed): never leave the caller in silence.
            await self._say_alone(self._deps.lines.llm_fallback, "fb")

    async def _finish(self, cancelled: list[asyncio.Task[Any]]) -> None:
        if cancelled:
            await asyncio.gather(*cancelled, return_exceptions=True)
        if self._recorder is not None:
            self._recorder.close()
        duration = time.monotonic() - self._started
        self._log.info(
            "call_ended",
            reason=self._end_reason,
            duration_s=round(duration, 1),
            invalid_triggers=self.machine.invalid_triggers,
        )
        self.emit(CallEnded(call_sid=self.call_sid, reason=self._end_reason, duration_s=round(duration, 2)))
        try:
            await self._transport.close()
        except Exception as exc:  # noqa: BLE001 - the peer may already be gone; the call is over either way
            self._log.debug("transport_close_failed", error=repr(exc))

    # ===== helpers ==========================================================================================
    def _on_sent(self, ulaw: bytes) -> None:
        self.detector.play_reference(ulaw)
        if self._recorder is not None:
            self._recorder.bot(ulaw)

    def _drop_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch[1].cancel()
            self._prefetch = None

    def _next_aux(self) -> int:
        self._aux += 1
        self._speech_turn = 1_000_000 + self._aux
        return self._speech_turn

    def _record_interrupted(self) -> None:
        hearing = self.tracker.hearing(self._speech_turn)
        heard, cut = hearing.heard, " ".join(filter(None, (hearing.cut, hearing.pending)))
        self.tracker.forget(self._speech_turn)
        if not self.conversation.replace_last_assistant(heard):
            self.conversation.add_assistant(heard)
        self.emit(
            TranscriptEvent(
                call_sid=self.call_sid, role="bot", text=heard, cut=cut, turn=self._turn, interrupted=True
            )
        )
        self._log.info("bot_interrupted", heard_chars=len(heard), cut_chars=len(cut))

    def _publish_latency(self, turn: int, clock: TurnClock) -> None:
        self.emit(
            TurnLatency(
                call_sid=self.call_sid,
                turn=turn,
                transcript_ms=clock.ms("transcript"),
                llm_first_token_ms=clock.ms("llm_first_token"),
                first_sentence_ms=clock.ms("first_sentence"),
                tts_first_byte_ms=clock.ms("tts_first_byte"),
                first_audio_ms=clock.ms("first_audio"),
                playback_done_ms=clock.ms("playback_done"),
            )
        )


def _joined(result: TurnResult) -> str:
    return " ".join(text for _spoken, text in result.spoken)
