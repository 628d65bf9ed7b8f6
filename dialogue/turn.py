"""One caller turn: transcribe, stream the reply sentence by sentence into speech, wait until heard.

Runs as a task owned by the call session, so a barge-in or hang-up cancels it wherever it is. The adapters
own their deadlines; a turn only catches their errors and answers each with a German fallback sentence, so
the caller is never left in silence. Progress is fired with the turn's generation: a turn that was already
superseded cannot move the call.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from dialogue.conversation import Conversation
from dialogue.events import BotSentence, CallEvent, TranscriptEvent
from dialogue.latency import TurnClock
from dialogue.llm import LanguageModel, Message, TextDelta, ToolCall, ToolSpec
from dialogue.machine import Trigger
from dialogue.preempt import Preemption, PreemptiveReply
from dialogue.sentences import SentenceSplitter
from dialogue.speaker import Spoken
from dialogue.tools import Outcome, ToolRegistry
from dialogue.voice import BotVoice
from media.errors import ProviderError
from media.speech import SpeechToText, TextToSpeech, Transcript, Utterance

_NOISE = re.compile(r"^[\W_]*$")
_HALLUCINATIONS = {
    "untertitel im auftrag des zdf",
    "untertitel der amara.org-community",
    "vielen dank fürs zuschauen",
    "untertitelung des zdf",
}


def is_noise(text: str) -> bool:
    """STT output that is no words at all, or a known Whisper hallucination on silence."""
    cleaned = text.strip().lower().rstrip(".!? ")
    return not cleaned or bool(_NOISE.match(cleaned)) or cleaned in _HALLUCINATIONS


@dataclass(slots=True, eq=False)
class Job:
    """One piece of the bot's work (greeting, a caller's turn, a fixed line): what a barge-in cancels.

    ``gen`` is its generation in the machine; ``key`` files its speech in the playback tracker.
    """

    gen: int
    name: str
    announced: bool = False
    """``reply_started`` has been fired (or was not needed): it fires once per job."""
    spoken: list[tuple[Spoken, str]] = field(default_factory=list)

    @property
    def key(self) -> int:
        return self.gen


@dataclass(slots=True, eq=False)
class Turn(Job):
    """A caller's turn: the audio, what became of it, and what the session does after it."""

    number: int = 0
    utterance: Utterance = field(default_factory=lambda: Utterance(b""))
    clock: TurnClock = field(default_factory=lambda: TurnClock(speech_end=0.0))
    prefetched: asyncio.Task[Transcript | Exception] | None = None
    transcript: str = ""
    user_message: Message | None = None
    outcome: Outcome | None = None
    handover: bool = False
    preemptive: PreemptiveReply | None = None
    """The reply held since the last pause; the turn adopts it if it was asked for exactly its words."""
    preempt_saved_ms: float | None = None
    """How long before the turn began its adopted reply was asked for (None: not preemptive)."""
    began: float = field(default_factory=time.monotonic)


class TurnHost(Protocol):
    """What a turn needs from its call session."""

    call_sid: str

    def fire(self, trigger: Trigger, *, gen: int | None = None, **data: Any) -> bool: ...

    def announce(self, job: Job) -> Callable[[], None]:
        """A callback for the job's first audio: fires ``reply_started`` once."""

    def emit(self, event: CallEvent) -> None: ...

    def provider_failed(self, stage: str, exc: ProviderError) -> bool:
        """Records a failure; True when the call should now be handed over instead of carrying on."""

    def provider_ok(self) -> None: ...


async def speculative_transcript(stt: SpeechToText, utterance: Utterance) -> Transcript | Exception:
    """STT started before the end of turn is certain: a failure is returned, not raised, because it is the
    caller's problem only if the turn really ends here (then the turn raises it: the adapter already spent
    its budget and its retries, and a second attempt would double the caller's silence)."""
    try:
        return await stt.transcribe(utterance)
    except Exception as exc:  # noqa: BLE001 - handed to the turn, which owns the reaction
        return exc


class TurnRunner:
    def __init__(
        self,
        host: TurnHost,
        *,
        stt: SpeechToText,
        llm: LanguageModel,
        voice: BotVoice,
        conversation: Conversation,
        tools: ToolRegistry,
        fallback_stt: str,
        fallback_llm: str,
        preemption: Preemption | None = None,
        first_clause_words: int = 0,
    ) -> None:
        self._host = host
        self._stt = stt
        self._llm = llm
        self._voice = voice
        self._conversation = conversation
        self._tools = tools
        self._fallback_stt = fallback_stt
        self._fallback_llm = fallback_llm
        self._preemption = preemption
        self.first_clause_words = first_clause_words
        """0: TTS gets whole sentences; else the first clause once this many words are in (``sentences``)."""
        self._log = structlog.get_logger()

    def tool_specs(self) -> list[ToolSpec]:
        return self._tools.specs()

    async def run(self, turn: Turn) -> None:
        """Fills ``turn`` as it goes, so a cancelled turn still tells the session what was spoken."""
        try:
            await self._run(turn)
        finally:
            if turn.preemptive is not None and self._preemption is not None:
                self._preemption.drop("the turn did not use it", turn.preemptive)
            turn.preemptive = None

    async def _run(self, turn: Turn) -> None:
        text = await self._transcribe(turn)
        if text is None:
            return
        if is_noise(text):
            self._log.info("transcript_empty", turn=turn.number)
            self._host.fire(Trigger.TRANSCRIPT_EMPTY, gen=turn.gen)
            return
        turn.transcript = text
        self._host.emit(
            TranscriptEvent(call_sid=self._host.call_sid, role="caller", text=text, turn=turn.number)
        )
        turn.user_message = self._conversation.add_user(text)
        adopted = self._adopt(turn, text)
        self._host.fire(Trigger.TRANSCRIPT_READY, gen=turn.gen)
        await self._reply(turn, adopted)

    def _adopt(self, turn: Turn, text: str) -> PreemptiveReply | None:
        """The held reply, if it was asked with exactly this turn's words and history; else it is dropped."""
        reply = turn.preemptive
        if reply is None or self._preemption is None:
            return None
        if not reply.matches(text, self._conversation.messages()):
            self._preemption.drop("the turn's words or history differ", reply)
            turn.preemptive = None
            return None
        turn.preemptive = None
        turn.clock.mark_at("transcript", reply.started_at)  # it was asked for as soon as the words were in
        turn.preempt_saved_ms = self._preemption.adopted(reply, turn.began)
        self._log.info(
            "reply_preemptive", call_sid=self._host.call_sid, turn=turn.number, saved_ms=turn.preempt_saved_ms
        )
        return reply

    async def _transcribe(self, turn: Turn) -> str | None:
        try:
            if turn.prefetched is not None:
                transcript = await turn.prefetched
                if isinstance(transcript, Exception):
                    raise transcript
            else:
                transcript = await self._stt.transcribe(turn.utterance)
        except ProviderError as exc:
            if self._host.provider_failed("stt", exc):
                turn.handover = True
                return None
            await self._say(self._fallback_stt, turn)
            return None
        turn.clock.mark("transcript")
        return transcript.text.strip()

    async def _reply(self, turn: Turn, adopted: PreemptiveReply | None = None) -> None:
        for _round in range(3):  # a tool's text result gets one more round; never loop forever
            text, calls, failed = await self._stream_round(turn, adopted if _round == 0 else None)
            if failed:
                if text:  # what the caller already heard of this reply stays in the history
                    self._conversation.add_assistant(text)
                if not turn.handover and not turn.spoken:
                    await self._say(self._fallback_llm, turn)
                return
            self._conversation.add_assistant(text, tuple(calls))
            if not calls:
                self._host.provider_ok()
                return
            more = False
            for call in calls:
                outcome = await self._run_tool(call)
                if isinstance(outcome, Outcome):
                    self._conversation.add_tool_result(call.id, "ok")
                    turn.outcome = outcome
                else:
                    self._conversation.add_tool_result(call.id, outcome)
                    more = True
            self._host.provider_ok()
            if turn.outcome is not None or not more:
                return

    async def _run_tool(self, call: ToolCall) -> Outcome | str:
        """A tool that raises answers the model with an error result; the conversation stays well-formed."""
        try:
            return await self._tools.run(call.name, call.arguments)
        except Exception as exc:  # noqa: BLE001 - the model hears of it and can say so
            self._log.error("tool_failed", tool=call.name, error=repr(exc))
            return f"Fehler: {call.name} ist gerade nicht verfügbar."

    def _parts(self, turn: Turn, adopted: PreemptiveReply | None) -> AsyncIterator[TextDelta | ToolCall]:
        if adopted is None:
            return self._llm.stream_reply(self._conversation.messages(), self._tools.specs())
        turn.clock.mark_at("llm_first_token", adopted.first_token_at)
        turn.clock.mark_at("first_sentence", adopted.first_clause_at)
        return adopted.stream()

    async def _stream_round(
        self, turn: Turn, adopted: PreemptiveReply | None = None
    ) -> tuple[str, list[ToolCall], bool]:
        """The reply's text (only the sentences spoken so far, after a failure), its tool calls, and
        whether the model failed."""
        splitter = SentenceSplitter(first_clause_words=self.first_clause_words)
        parts: list[str] = []
        said: list[str] = []
        calls: list[ToolCall] = []
        try:
            async for part in self._parts(turn, adopted):
                turn.clock.mark("llm_first_token")
                if isinstance(part, TextDelta):
                    parts.append(part.text)
                    for sentence in splitter.push(part.text):
                        said.append(sentence)
                        await self._sentence(sentence, turn, adopted)
                else:
                    calls.append(part)
            for sentence in splitter.flush():
                said.append(sentence)
                await self._sentence(sentence, turn)
        except ProviderError as exc:
            if self._host.provider_failed("llm", exc):
                turn.handover = True
            return " ".join(said), calls, True
        finally:
            if adopted is not None:
                adopted.cancel()  # read to its end, or the turn was cancelled: either way it is over
        return "".join(parts).strip(), calls, False

    async def _sentence(self, sentence: str, turn: Turn, adopted: PreemptiveReply | None = None) -> None:
        turn.clock.mark("first_sentence")
        self._host.emit(BotSentence(call_sid=self._host.call_sid, text=sentence, turn=turn.number))
        held = adopted.speech_for(sentence) if adopted is not None else None
        if held is not None:
            turn.clock.mark_at("tts_first_byte", held.first_byte_at)
        await self._say(sentence, turn, held)

    async def _say(self, text: str, turn: Turn, engine: TextToSpeech | None = None) -> None:
        announce = self._host.announce(turn)

        def first_audio() -> None:
            turn.clock.mark("first_audio")
            announce()

        try:
            spoken = await self._voice.say(
                text,
                tag=f"t{turn.number}",
                key=turn.key,
                on_first_audio=first_audio,
                on_first_byte=lambda: turn.clock.mark("tts_first_byte"),
                engine=engine,
            )
        except ProviderError as exc:
            if self._host.provider_failed("tts", exc):
                turn.handover = True
            return
        turn.spoken.append((spoken, text))
