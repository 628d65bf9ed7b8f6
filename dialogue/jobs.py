"""The bot's current piece of work: one job at a time, each with a generation, none ever left silent.

A job is the greeting, a caller's turn or a fixed line. Starting one supersedes the last (its progress
triggers become stale in the machine); a barge-in cancels it and keeps only the words the caller heard.
Whatever a job raises (a bug in a tool, an adapter, the voice) is caught here: the caller hears the German
fallback sentence and the call goes back to listening.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import structlog

from dialogue.conversation import Conversation
from dialogue.events import CallError, CallEvent, ProtocolEvent, TranscriptEvent
from dialogue.latency import TurnClock, turn_latency
from dialogue.lines import ScriptedLines
from dialogue.llm import Message
from dialogue.machine import TALKING, CallMachine, Trigger, Work
from dialogue.preempt import Preemption
from dialogue.streamed_turns import StreamedTurns
from dialogue.tasks import CallTasks
from dialogue.tools import Outcome
from dialogue.turn import Job, Turn, TurnRunner, speculative_transcript
from dialogue.voice import BotVoice
from media.speech import SpeechToText, Transcript, Utterance

JobWork = Callable[[Job], Coroutine[Any, Any, None]]
"""What a job does, given its record."""


class JobHost(Protocol):
    call_sid: str
    machine: CallMachine

    def emit(self, event: CallEvent) -> None: ...

    def announce(self, job: Job) -> Callable[[], None]: ...

    @property
    def ended(self) -> bool: ...

    @property
    def failures(self) -> int: ...


class Jobs:
    def __init__(
        self,
        host: JobHost,
        *,
        tasks: CallTasks,
        voice: BotVoice,
        lines: ScriptedLines,
        runner: TurnRunner,
        conversation: Conversation,
        stt: SpeechToText,
        speculative_stt: bool,
        stream: StreamedTurns | None = None,
        preemption: Preemption | None = None,
    ) -> None:
        self._host = host
        self._tasks = tasks
        self._voice = voice
        self._lines = lines
        self._runner = runner
        self._conversation = conversation
        self._stt = stt
        self._speculative = speculative_stt
        self._stream = stream
        self._preemption = preemption
        self.job: Job | None = None
        self._task: asyncio.Task[None] | None = None
        self._prefetch: tuple[bytes, asyncio.Task[Transcript | Exception]] | None = None
        self._goes_on: Turn | None = None
        """A turn the caller went on with over its reply: the next end of turn merges into it."""
        self.turns = 0
        self.reprompts = 0
        self._log = structlog.get_logger()

    # --- starting and stopping -----------------------------------------------------------------------
    def begin(self, work: JobWork, name: str) -> Job:
        return self._start(Job(self._host.machine.next_generation(), name), work)

    def _start(self, job: Job, work: JobWork) -> Job:
        self.job = job
        self._task = self._tasks.spawn(self._guarded(job, work), f"{job.name}-{job.gen}")
        return job

    def cancel(self) -> None:
        if self._preemption is not None:
            self._preemption.drop("the bot's work changed")
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    # --- effects (synchronous) ---------------------------------------------------------------------------
    def replace(self, data: Mapping[str, Any]) -> None:
        self._goes_on = None
        self._voice.clear_if_playing()
        self.cancel()
        self.begin(data["run"], data["name"])

    def start_turn(self, data: Mapping[str, Any], *, carry: bool = False) -> None:
        if self._goes_on is not None:
            old, self._goes_on = self._goes_on, None
            self._merge(old, data)
            return
        utterance: Utterance = data["utterance"]
        prefetch, self._prefetch = self._prefetch, None
        prefetched = None
        same = prefetch is not None and prefetch[0] == utterance.pcm16
        if self._stream is not None:
            if prefetch is not None:
                prefetch[1].cancel()  # the turn's own join covers the same committed parts
            prefetched = self._stream.end_turn(after_pause=same, carry=carry)
        elif prefetch is not None and same:
            prefetched = prefetch[1]  # the caller stayed silent: the speculative transcript is this turn's
        elif prefetch is not None:
            prefetch[1].cancel()
        self.turns += 1
        self.reprompts = 0
        turn = Turn(
            self._host.machine.next_generation(),
            f"turn-{self.turns}",
            number=self.turns,
            utterance=utterance,
            clock=TurnClock(speech_end=data["speech_end"]),
            prefetched=prefetched,
            preemptive=self._preemption.take() if self._preemption is not None else None,
        )
        self._start(turn, self._turn)  # type: ignore[arg-type]

    def restart_turn(self, data: Mapping[str, Any]) -> None:
        """The caller went on after a pause the bot took for the end of the turn: one turn, transcribed
        whole; the reply to the fragment is dropped and the fragment leaves the history."""
        old = self.job
        self._voice.clear_if_playing()
        self.cancel()
        self._merge(old, data)

    def _merge(self, old: Job | None, data: Mapping[str, Any]) -> None:
        pcm = data["utterance"].pcm16
        carry = isinstance(old, Turn)
        if isinstance(old, Turn):
            if old.user_message is not None:
                self._conversation.rollback(old.user_message)
            pcm = old.utterance.pcm16 + pcm
            self.turns -= 1
        self.start_turn({**data, "utterance": Utterance(pcm, data["utterance"].sample_rate)}, carry=carry)

    def continue_turn(self, data: Mapping[str, Any]) -> None:
        """The caller went on over the first words of the reply to their turn: it was a pause, not the end.

        The reply is cleared and leaves the history with the fragment it answered (it answered a question
        the caller had not finished asking); the next end of turn is merged into that turn, so everything
        the caller said becomes one user message (``_merge``).
        """
        job = self.job
        self._voice.clear()
        self._host.emit(
            ProtocolEvent(
                call_sid=self._host.call_sid, name="clear", detail=f"continuation in {data['work']}"
            )
        )
        self.cancel()
        if not isinstance(job, Turn):
            return
        if job.spoken:
            hearing = self._voice.hearing(job.key)
            cut = " ".join(filter(None, (hearing.cut, hearing.pending)))
            self._host.emit(
                TranscriptEvent(
                    call_sid=self._host.call_sid,
                    role="bot",
                    text=hearing.heard,
                    cut=cut,
                    turn=job.number,
                    interrupted=True,
                )
            )
        if job.user_message is not None:
            self._conversation.rollback(job.user_message)
            job.user_message = None
        self._goes_on = job
        self._log.info("turn_continued", turn=job.number, reply_heard_ms=data.get("reply_heard_ms"))

    def interrupt(self, data: Mapping[str, Any]) -> None:
        job = self.job
        self._voice.clear()
        self._host.emit(
            ProtocolEvent(
                call_sid=self._host.call_sid,
                name="clear",
                detail=f"barge-in in {data['work']}: {data.get('reason', 'duration')}",
            )
        )
        self.cancel()
        if job is not None and job.spoken and data["work"] in TALKING:
            self._record_interrupted(job)

    def start_prefetch(self, utterance: Utterance) -> asyncio.Task[Transcript | Exception] | None:
        """Transcribes the words so far at a pause; the turn uses it if the caller stays silent."""
        if not self._speculative:
            return None
        if self._preemption is not None:
            self._preemption.drop("a newer pause")  # the words grew: its reply answers fewer of them
        if self._prefetch is not None:
            self._prefetch[1].cancel()
        if self._stream is not None:
            task = self._stream.pause()
        else:
            task = self._tasks.spawn(speculative_transcript(self._stt, utterance), "prefetch-stt")
        self._prefetch = (utterance.pcm16, task)
        return task

    def preempt(self, transcript: str) -> None:
        """A pause was judged complete: ask for the reply now, as the turn would if it ended here."""
        if self._preemption is None:
            return
        if isinstance(self._goes_on, Turn) and self._goes_on.transcript:
            # The caller went on over the reply: the turn will be the merged words, so ask for those.
            transcript = f"{self._goes_on.transcript} {transcript}"
        messages = [*self._conversation.messages(), Message("user", transcript)]
        self._preemption.start(transcript, messages, self._runner.tool_specs())

    # --- running ---------------------------------------------------------------------------------------
    async def _guarded(self, job: Job, work: JobWork) -> None:
        try:
            await work(job)
        except Exception as exc:  # noqa: BLE001 - never silent: whatever failed, the caller hears why
            self._log.error("job_failed", job=job.name, error=repr(exc))
            self._host.emit(
                CallError(call_sid=self._host.call_sid, stage="session", detail=f"{job.name}: {exc!r}")
            )
            if not self._host.ended:
                await self._fallback(job)

    async def _fallback(self, job: Job) -> None:
        text = self._lines.lines.llm_fallback
        try:
            spoken = await self._voice.say(
                text, tag="fb", key=job.key, on_first_audio=self._host.announce(job)
            )
            await self._voice.played(spoken)
        except Exception as exc:  # noqa: BLE001 - not even the fallback: listen again rather than hang
            self._log.error("fallback_failed", error=repr(exc))
            self._host.machine.fire(Trigger.REPLY_FAILED, gen=job.gen)
            return
        self._voice.forget(job.key)
        self._host.emit(TranscriptEvent(call_sid=self._host.call_sid, role="bot", text=text, turn=self.turns))
        self._host.machine.fire(Trigger.PLAYBACK_DONE, gen=job.gen)

    async def _turn(self, turn: Turn) -> None:
        try:
            await self._runner.run(turn)
            for spoken, _text in turn.spoken:
                await self._voice.played(spoken)
            if turn.spoken:
                turn.clock.mark("playback_done")
                text = " ".join(text for _spoken, text in turn.spoken)
                self._host.emit(
                    TranscriptEvent(call_sid=self._host.call_sid, role="bot", text=text, turn=turn.number)
                )
                self._voice.forget(turn.key)
        finally:
            self._host.emit(turn_latency(self._host.call_sid, turn.number, turn.clock, turn.preempt_saved_ms))
        if turn.handover:
            await self._lines.handover(turn, self._host.failures)
        elif turn.outcome is Outcome.END_CALL:
            await self._lines.goodbye(turn, "bot_ended")
        elif turn.outcome is Outcome.TRANSFER:
            await self._lines.transfer(turn)
        elif turn.spoken:
            self._host.machine.fire(Trigger.PLAYBACK_DONE, gen=turn.gen)
        elif self._host.machine.work in (Work.THINKING, Work.TRANSCRIBING):
            # Nothing was said (empty reply, or every voice failed): never leave the caller in silence.
            await self._lines.say(turn, self._lines.lines.llm_fallback, "fb")

    def _record_interrupted(self, job: Job) -> None:
        hearing = self._voice.hearing(job.key)
        heard, cut = hearing.heard, " ".join(filter(None, (hearing.cut, hearing.pending)))
        if not self._conversation.replace_last_assistant(heard):
            self._conversation.add_assistant(heard)
        number = job.number if isinstance(job, Turn) else self.turns
        self._host.emit(
            TranscriptEvent(
                call_sid=self._host.call_sid, role="bot", text=heard, cut=cut, turn=number, interrupted=True
            )
        )
        self._log.info("bot_interrupted", heard_chars=len(heard), cut_chars=len(cut))
