"""One phone call: receives the media stream, feeds the spine (``dialogue.machine``), owns every task.

Inbound audio is analysed as it arrives, and the rare frame that ends a turn event fires its trigger right
there on the stream's own task. Every piece of the bot's work runs as one job with a generation; whatever it
raises, the caller hears the German fallback and the call returns to listening. Hanging up cancels every
task the session owns; ``active_tasks`` lets tests prove nothing is left running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import structlog

from dialogue.caller_turns import CallerTurns
from dialogue.config import CallDeps, Recorder, SessionConfig
from dialogue.conversation import Conversation
from dialogue.ending import CallEnd
from dialogue.events import CallError, CallEvent, CallStarted, EventSink, ProtocolEvent, StateChanged
from dialogue.jobs import Jobs, JobWork
from dialogue.lines import ScriptedLines
from dialogue.machine import TALKING, CallMachine, Floor, Trigger, Work
from dialogue.preempt import Preemption
from dialogue.streamed_turns import StreamedTurns
from dialogue.tasks import CallTasks
from dialogue.timers import CallTimers
from dialogue.turn import Job, TurnRunner
from dialogue.voice import FEED_FAILURES_BEFORE_HANGUP, BotVoice
from media.errors import ProviderError
from media.privacy import mask_phone
from media.transport import CallControl, CallTransport, StreamStart
from media.turns import TurnDetector


class CallSession:
    """Implements ``media.transport.StreamHandler``, the machine's owner and the hosts of turns and lines."""

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
        self._config = config
        self._sink = sink
        self._recorder = recorder
        self._log = structlog.get_logger().bind(call_sid=self.call_sid, stream_sid=self.stream_sid)
        self.machine = CallMachine(self)
        self.detector = TurnDetector(config.turn)
        self.voice = BotVoice(
            transport,
            deps,
            lead_ms=config.playout_lead_ms,
            echo_slack_s=config.echo_slack_s,
            recorder=recorder,
            on_sent=self.detector.play_reference,
            on_underrun=self._underrun,
        )
        self.conversation = Conversation(deps.system_prompt, token_budget=config.history_token_budget)
        self.lines = ScriptedLines(
            self, self.voice, deps.lines, control, transfer_number=config.transfer_number
        )
        self._tasks = CallTasks(self.call_sid, on_failure=self._task_failed)
        self.preemption = Preemption(
            self.call_sid,
            enabled=config.preemptive_reply and config.speculative_stt,
            llm=deps.llm,
            tts=deps.tts,
            first_clause_words=config.first_clause_words,
            spawn=self._spawn,
        )
        runner = TurnRunner(
            self,
            stt=deps.stt,
            llm=deps.llm,
            voice=self.voice,
            conversation=self.conversation,
            tools=deps.tools,
            fallback_stt=deps.lines.stt_fallback,
            fallback_llm=deps.lines.llm_fallback,
            preemption=self.preemption,
            first_clause_words=config.first_clause_words,
        )
        self.stream = StreamedTurns.for_call(deps.open_transcriber, self.call_sid, config.turn, self._spawn)
        self.jobs = Jobs(
            self,
            tasks=self._tasks,
            voice=self.voice,
            lines=self.lines,
            runner=runner,
            conversation=self.conversation,
            stt=deps.stt,
            speculative_stt=config.speculative_stt,
            stream=self.stream,
            preemption=self.preemption,
        )
        self.timers = CallTimers(self, config=config, jobs=self.jobs, lines=self.lines, spawn=self._spawn)
        self._caller_turns = CallerTurns(
            self, detector=self.detector, jobs=self.jobs, stream=self.stream, preemption=self.preemption
        )
        self.pauses = self._caller_turns.pauses
        self.overlaps = self._caller_turns.overlaps
        self.closing = False
        self._failures = 0
        self._end = CallEnd(self, tasks=self._tasks, transport=transport)

    # ===== StreamHandler ====================================================================================
    async def on_start(self, start: StreamStart) -> None:
        structlog.contextvars.bind_contextvars(call_sid=self.call_sid, stream_sid=self.stream_sid)
        caller = mask_phone(start.custom_parameters.get("caller", ""))
        self.emit(
            CallStarted(
                call_sid=self.call_sid, stream_sid=self.stream_sid, caller=caller, transport=start.transport
            )
        )
        self._log.info("call_started", transport=start.transport)
        self.detector.bot_speaking = True  # the greeting starts now
        self._spawn(self.voice.feed(self._feed_failed), "playout")
        if self.stream is not None:
            self._spawn(self.stream.start(), "stt-start")
        self.timers.start()
        self.jobs.begin(self.lines.greet, "greeting")

    def on_audio(self, ulaw: bytes) -> None:
        if self._end.ended:
            return
        if self._recorder is not None:
            self._recorder.caller(ulaw)
        self._caller_turns.hear(ulaw)

    async def on_dtmf(self, digit: str) -> None:
        self.emit(ProtocolEvent(call_sid=self.call_sid, name="dtmf", detail=digit))
        action = self._config.dtmf_actions.get(digit)
        self._log.info("dtmf", digit=digit, action=action)
        if action is None or self.closing or self._end.ended:
            return
        if action == "transfer":
            self.take_over(self.lines.transfer, "transfer")
        elif action == "hangup":
            self.take_over(lambda job: self.lines.goodbye(job, "dtmf"), "goodbye")
        elif action == "repeat":
            last = next((m.content for m in reversed(self.conversation.turns) if m.role == "assistant"), "")
            if last:
                self.take_over(lambda job: self.lines.say(job, last, "repeat"), "repeat")

    async def on_mark(self, name: str) -> None:
        result = self.voice.on_echo(name)
        verdict = "heard" if result.heard else "flushed"
        self.emit(ProtocolEvent(call_sid=self.call_sid, name="mark", detail=f"{name} {verdict}"))

    async def on_stop(self, reason: str) -> None:
        await self.hangup(reason)

    # ===== public control ===================================================================================
    async def hangup(self, reason: str) -> None:
        """Ends the call from any state and waits until every task of the call has finished."""
        await self._end.hangup(reason)

    def ending(self, reason: str) -> None:
        self._end.note(reason)

    def active_tasks(self) -> int:
        return self._end.active

    @property
    def state(self) -> Work:
        return self.machine.work

    @property
    def turn_number(self) -> int:
        return self.jobs.turns

    @property
    def ended(self) -> bool:
        return self._end.ended

    @property
    def failures(self) -> int:
        return self._failures

    def take_over(self, work: JobWork, name: str) -> None:
        """DTMF, a reprompt or the time limit: this work replaces whatever the bot was doing."""
        self.fire(Trigger.TAKE_OVER, run=work, name=name)

    # ===== hosts of turns and lines =========================================================================
    def fire(self, trigger: Trigger, *, gen: int | None = None, **data: Any) -> bool:
        return self.machine.fire(trigger, gen=gen, **data)

    def announce(self, job: Job) -> Callable[[], None]:
        def first_audio() -> None:
            if not job.announced:
                job.announced = True
                self.fire(Trigger.REPLY_STARTED, gen=job.gen)

        return first_audio

    def emit(self, event: CallEvent) -> None:
        self._sink.publish(event)

    def _underrun(self, dry_s: float) -> None:
        """The caller heard the bot stutter: a wire-level fact for the console and ``/metrics``."""
        self.emit(ProtocolEvent(call_sid=self.call_sid, name="underrun", detail=f"{dry_s * 1000:.0f} ms"))

    def provider_failed(self, stage: str, exc: ProviderError) -> bool:
        self._failures += 1
        self._log.warning("provider_failed", stage=stage, detail=exc.detail, failures=self._failures)
        self.emit(CallError(call_sid=self.call_sid, stage=stage, detail=exc.detail))
        return self._failures >= self._config.failures_before_handover

    def provider_ok(self) -> None:
        self._failures = 0

    # ===== MachineOwner =====================================================================================
    def on_transition(self, machine: str, trigger: Trigger, source: str, dest: str) -> None:
        work, floor = self.machine.work, self.machine.floor
        if trigger is Trigger.REPLY_STARTED:
            self._caller_turns.reply_started()
        self.detector.bot_speaking = work in TALKING and floor is not Floor.CALLER
        self._log.info("state_changed", machine=machine, trigger=str(trigger), source=source, dest=dest)

    def on_view(self, trigger: Trigger, source: str, dest: str) -> None:
        monotonic = self.machine.log[-1].monotonic
        self.emit(
            StateChanged(
                call_sid=self.call_sid, source=source, dest=dest, trigger=str(trigger), monotonic=monotonic
            )
        )

    # effects: synchronous, they only start or cancel work
    def pause_output(self, _data: Mapping[str, Any]) -> None:
        self.voice.pause()
        self.disarm_reprompt(_data)

    def duck_output(self, _data: Mapping[str, Any]) -> None:
        self.voice.duck()
        self.disarm_reprompt(_data)

    def judge_overlap(self, data: Mapping[str, Any]) -> None:
        task = self.jobs.start_prefetch(data["utterance"])
        if task is not None:
            self.overlaps.watch(task, data["speech_end_ms"])
            self.pauses.watch(task, data["speech_end_ms"])  # once confirmed, the words also end the turn

    def continue_turn(self, data: Mapping[str, Any]) -> None:
        self.jobs.continue_turn(data)

    def resume_output(self, _data: Mapping[str, Any]) -> None:
        self.voice.resume()

    def arm_reprompt(self, _data: Mapping[str, Any]) -> None:
        self.timers.arm_reprompt()

    def disarm_reprompt(self, _data: Mapping[str, Any]) -> None:
        self.timers.disarm_reprompt()

    def prefetch(self, data: Mapping[str, Any]) -> None:
        task = self.jobs.start_prefetch(data["utterance"])
        if task is not None:
            self.pauses.watch(task, data["speech_end_ms"])

    def preempt(self, data: Mapping[str, Any]) -> None:
        self.jobs.preempt(data["transcript"])

    def start_turn(self, data: Mapping[str, Any]) -> None:
        self.jobs.start_turn(data)

    def restart_turn(self, data: Mapping[str, Any]) -> None:
        self.jobs.restart_turn(data)

    def interrupt_work(self, data: Mapping[str, Any]) -> None:
        self.jobs.interrupt(data)

    def replace_work(self, data: Mapping[str, Any]) -> None:
        self.jobs.replace(data)

    def end_call(self, _data: Mapping[str, Any]) -> None:
        self._end.shut_down()

    # ===== helpers ==========================================================================================
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    def _task_failed(self, name: str, exc: BaseException) -> None:
        self.emit(CallError(call_sid=self.call_sid, stage="session", detail=f"{name}: {exc!r}"))

    def _feed_failed(self, exc: BaseException) -> None:
        self.emit(CallError(call_sid=self.call_sid, stage="playout", detail=repr(exc)))
        if self.voice.feed_failures >= FEED_FAILURES_BEFORE_HANGUP and not self._end.ended:
            self._spawn(self.hangup("transport_failed"), "hangup")
