"""One phone call: receives the media stream, drives the state machine, owns every task of the call.

Inbound audio is analysed synchronously (cheap) and its turn events are queued to a single control task,
so the machine sees events in order and no callback ever awaits real work. Hanging up cancels every task
the session owns; ``active_tasks`` lets tests prove nothing is left running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from dialogue.conversation import Conversation
from dialogue.events import (
    BotSentence,
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
from dialogue.llm import LanguageModel
from dialogue.machine import CallMachine, CallState
from dialogue.phrases import PhraseCatalogue
from dialogue.speaker import Speaker, Spoken
from dialogue.tools import Outcome, ToolRegistry
from dialogue.turn import Budgets, TurnResult, TurnRunner
from media.errors import ProviderError
from media.playback import PlaybackTracker
from media.playout import Playout
from media.privacy import mask_phone
from media.speech import SpeechToText, TextToSpeech, Utterance
from media.transport import CallControl, CallTransport, StreamStart
from media.turns import (
    BargeIn,
    SpeechDiscarded,
    SpeechEnded,
    SpeechStarted,
    TurnConfig,
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


@dataclass(frozen=True, slots=True)
class SessionConfig:
    turn: TurnConfig = field(default_factory=TurnConfig)
    playout_lead_ms: int = 200
    reprompt_after_s: float = 8.0
    max_reprompts: int = 2
    max_call_duration_s: float = 900.0
    dtmf_actions: Mapping[str, str] = field(default_factory=lambda: {"0": "transfer"})
    transfer_number: str = ""
    failures_before_handover: int = 3
    history_token_budget: int = 3000
    budgets: Budgets = field(default_factory=Budgets)
    tts_first_byte_timeout_s: float = 2.0


@dataclass(frozen=True, slots=True)
class CallDeps:
    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech
    lines: PhraseCatalogue
    system_prompt: str
    cached_audio: Callable[[str], bytes | None] = lambda _text: None
    backup_tts: TextToSpeech | None = None
    tools: ToolRegistry = field(default_factory=ToolRegistry)


class Recorder(Protocol):
    def caller(self, ulaw: bytes) -> None: ...

    def bot(self, ulaw: bytes) -> None: ...

    def clear(self) -> None:
        """The far end dropped its buffer: bot audio not yet played was never heard."""

    def close(self) -> None: ...


_Control = TurnEvent | tuple[str, str]


class CallSession:
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
        self._start = start
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
        self._tasks: set[asyncio.Task[Any]] = set()
        self._controlq: asyncio.Queue[_Control] = asyncio.Queue()
        self._work: asyncio.Task[Any] | None = None
        """The bot's current piece of work (greeting, turn, reprompt, goodbye): what a barge-in cancels."""
        self._work_result: TurnResult | None = None
        self._reprompt: asyncio.Task[Any] | None = None
        self._resume_state = S.SPEAKING
        self._interrupted_from = S.SPEAKING
        self._next_utterance: Utterance | None = None
        self._held_pcm = b""
        self._last_utterance_pcm = b""
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
        self._wall_offset = time.monotonic()
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
        self._spawn(self._control_loop(), "control")
        self._spawn(self._watchdog(), "watchdog")
        self._work = self._spawn(self._greet(), "greeting")

    def on_audio(self, ulaw: bytes) -> None:
        if self._ended:
            return
        if self._recorder is not None:
            self._recorder.caller(ulaw)
        for event in self.detector.push(ulaw):
            self._controlq.put_nowait(event)

    async def on_dtmf(self, digit: str) -> None:
        self.emit(ProtocolEvent(call_sid=self.call_sid, name="dtmf", detail=digit))
        self._controlq.put_nowait(("dtmf", digit))

    async def on_mark(self, name: str) -> None:
        result = self.tracker.on_echo(name)
        self.speaker.on_echo(name)
        heard = getattr(result, "heard", True)
        self.emit(
            ProtocolEvent(
                call_sid=self.call_sid, name="mark", detail=f"{name} {'heard' if heard else 'flushed'}"
            )
        )

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
        running = sum(1 for t in self._tasks if not t.done())
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
        dropped = self.playout.flush()
        self.speaker.release(dropped)
        self.tracker.on_clear()
        if self._recorder is not None:
            self._recorder.clear()
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
        if utterance is None:
            return
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
        self._work = self._spawn(self._run_turn(utterance, self._turn, clock, result), f"turn-{self._turn}")

    def end_call(self) -> None:
        self._ended = True
        self._cancel_work()
        self.disarm_reprompt()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        self.speaker.cancel_all()
        self._shutdown = asyncio.get_running_loop().create_task(self._finish(current))

    # ===== tasks ============================================================================================
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.call_sid}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._log.error("task_failed", task=task.get_name(), error=repr(exc))
            self.emit(CallError(call_sid=self.call_sid, stage="session", detail=repr(exc)))

    def _cancel_work(self) -> None:
        if self._work is not None and self._work is not asyncio.current_task():
            self._work.cancel()
        self._work = None

    async def _control_loop(self) -> None:
        while True:
            item = await self._controlq.get()
            if isinstance(item, tuple):
                await self._on_dtmf_action(item[1])
            else:
                await self._on_turn_event(item)

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
        if self.machine.state in (S.SPEAKING, S.GREETING):
            self.speaker.release(self.playout.flush())
            self.tracker.on_clear()
        self._cancel_work()
        self._work_result = None
        self._work = self._spawn(coro, name)

    # ===== the bot's pieces of work =========================================================================
    async def _greet(self) -> None:
        spoken = await self._speak_line(self._deps.lines.greeting, "greeting", turn=0, announce=False)
        if spoken is not None:
            await self._line_heard(spoken, self._deps.lines.greeting, turn=0)
        await self.advance("greeting_done")

    async def _run_turn(self, utterance: Utterance, turn: int, clock: TurnClock, result: TurnResult) -> None:
        try:
            await self._runner.run(utterance, turn, clock, result)
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

    async def _finish(self, current: asyncio.Task[Any] | None) -> None:
        tasks = [t for t in self._tasks if t is not current]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
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
