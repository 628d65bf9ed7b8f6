"""One caller turn: transcribe, stream the reply sentence by sentence into speech, wait until heard.

Runs as a task owned by the call session, so a barge-in or hang-up cancels it wherever it is. Provider
failures never leave the caller in silence: the turn speaks a German fallback sentence instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from dialogue.conversation import Conversation
from dialogue.events import BotSentence, CallEvent, TranscriptEvent
from dialogue.latency import TurnClock
from dialogue.llm import LanguageModel, ReplyPart, TextDelta, ToolCall
from dialogue.sentences import SentenceSplitter
from dialogue.speaker import Speaker, Spoken
from dialogue.tools import Outcome, ToolRegistry
from media.errors import ProviderError
from media.speech import SpeechToText, Transcript, Utterance

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


class TurnHost(Protocol):
    """What a turn needs from its call session."""

    call_sid: str

    async def advance(self, trigger: str) -> bool: ...

    def advance_soon(self, trigger: str) -> None:
        """Fire ``trigger`` from a task the session owns (for callbacks that cannot await)."""

    def emit(self, event: CallEvent) -> None: ...

    def provider_failed(self, stage: str, exc: ProviderError | TimeoutError) -> bool:
        """Records a failure; True when the call should now be handed over instead of carrying on."""

    def provider_ok(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Budgets:
    stt_s: float = 4.0
    llm_first_token_s: float = 3.0
    llm_total_s: float = 15.0


@dataclass(slots=True)
class TurnResult:
    """What the session does after the turn: nothing, end the call, transfer, or hand over after failures."""

    outcome: Outcome | None = None
    handover: bool = False
    spoken: list[tuple[Spoken, str]] = field(default_factory=list)
    transcript: str = ""


async def speculative_transcript(stt: SpeechToText, utterance: Utterance) -> Transcript | None:
    """STT started before the end of turn is certain: a failure here is not the caller's problem yet."""
    try:
        return await stt.transcribe(utterance)
    except (ProviderError, TimeoutError):
        return None


class TurnRunner:
    def __init__(
        self,
        host: TurnHost,
        *,
        stt: SpeechToText,
        llm: LanguageModel,
        speaker: Speaker,
        conversation: Conversation,
        tools: ToolRegistry,
        budgets: Budgets,
        fallback_stt: str,
        fallback_llm: str,
    ) -> None:
        self._host = host
        self._stt = stt
        self._llm = llm
        self._speaker = speaker
        self._conversation = conversation
        self._tools = tools
        self._budgets = budgets
        self._fallback_stt = fallback_stt
        self._fallback_llm = fallback_llm
        self._log = structlog.get_logger()

    async def run(
        self,
        utterance: Utterance,
        turn: int,
        clock: TurnClock,
        result: TurnResult,
        *,
        prefetched: asyncio.Task[Transcript | None] | None = None,
    ) -> None:
        """Fills ``result`` as it goes, so a cancelled turn still tells the session what was spoken.

        ``prefetched``: a transcription of this very utterance started during the end-of-turn wait.
        """
        text = await self._transcribe(utterance, turn, clock, result, prefetched)
        if text is None:
            return
        if is_noise(text):
            self._log.info("transcript_empty", turn=turn)
            await self._host.advance("transcript_empty")
            return
        result.transcript = text
        self._host.emit(TranscriptEvent(call_sid=self._host.call_sid, role="caller", text=text, turn=turn))
        self._conversation.add_user(text)
        await self._host.advance("transcript_ready")
        await self._reply(turn, clock, result)

    async def _transcribe(
        self,
        utterance: Utterance,
        turn: int,
        clock: TurnClock,
        result: TurnResult,
        prefetched: asyncio.Task[Transcript | None] | None,
    ) -> str | None:
        try:
            async with asyncio.timeout(self._budgets.stt_s):
                transcript = await prefetched if prefetched is not None else None
                if transcript is None:  # no prefetch, or it failed: one ordinary attempt
                    transcript = await self._stt.transcribe(utterance)
        except (ProviderError, TimeoutError) as exc:
            if self._host.provider_failed("stt", exc):
                result.handover = True
                return None
            await self._say(self._fallback_stt, clock, result, turn=turn)
            return None
        clock.mark("transcript")
        return transcript.text.strip()

    async def _reply(self, turn: int, clock: TurnClock, result: TurnResult) -> None:
        for _round in range(3):  # a tool's text result gets one more round; never loop forever
            text, calls, failed = await self._stream_round(turn, clock, result)
            if failed:
                if result.handover:
                    return
                if not result.spoken:
                    await self._say(self._fallback_llm, clock, result, turn=turn)
                return
            self._conversation.add_assistant(text, tuple(calls))
            if not calls:
                self._host.provider_ok()
                return
            more = False
            for call in calls:
                outcome = await self._tools.run(call.name, call.arguments)
                if isinstance(outcome, Outcome):
                    self._conversation.add_tool_result(call.id, "ok")
                    result.outcome = outcome
                else:
                    self._conversation.add_tool_result(call.id, outcome)
                    more = True
            self._host.provider_ok()
            if result.outcome is not None or not more:
                return

    async def _stream_round(
        self, turn: int, clock: TurnClock, result: TurnResult
    ) -> tuple[str, list[ToolCall], bool]:
        splitter = SentenceSplitter()
        parts: list[str] = []
        calls: list[ToolCall] = []
        stream = self._llm.stream_reply(self._conversation.messages(), self._tools.specs())
        try:
            async with asyncio.timeout(self._budgets.llm_total_s):
                iterator = aiter(stream)
                async with asyncio.timeout(self._budgets.llm_first_token_s):
                    first = await anext(iterator, None)
                clock.mark("llm_first_token")
                pending = [first] if first is not None else []
                async for part in _chain(pending, iterator):
                    if isinstance(part, TextDelta):
                        parts.append(part.text)
                        for sentence in splitter.push(part.text):
                            await self._sentence(sentence, turn, clock, result)
                    else:
                        calls.append(part)
                for sentence in splitter.flush():
                    await self._sentence(sentence, turn, clock, result)
        except (ProviderError, TimeoutError) as exc:
            if self._host.provider_failed("llm", exc):
                result.handover = True
            return "".join(parts), calls, True
        return "".join(parts).strip(), calls, False

    async def _sentence(self, sentence: str, turn: int, clock: TurnClock, result: TurnResult) -> None:
        clock.mark("first_sentence")
        self._host.emit(BotSentence(call_sid=self._host.call_sid, text=sentence, turn=turn))
        await self._say(sentence, clock, result, turn=turn)

    async def _say(self, text: str, clock: TurnClock, result: TurnResult, *, turn: int) -> None:
        def first_audio() -> None:
            clock.mark("first_audio")
            self._host.advance_soon("reply_started")

        try:
            spoken = await self._speaker.say(
                text,
                tag=f"t{turn}",
                turn=turn,
                on_first_audio=first_audio,
                on_first_byte=lambda: clock.mark("tts_first_byte"),
            )
        except ProviderError as exc:
            if self._host.provider_failed("tts", exc):
                result.handover = True
            return
        result.spoken.append((spoken, text))


async def _chain(first: list[ReplyPart], rest: AsyncIterator[ReplyPart]) -> AsyncIterator[ReplyPart]:
    for part in first:
        yield part
    async for part in rest:
        yield part
