"""A reply started before the caller's turn is certainly over, held until it is (preemptive generation).

When the end-of-turn judge calls a pause's words complete, the detector still counts the silence (500 ms
for a whole statement). That wait is spent here: the LLM request for those words runs, and so does the
TTS of the reply's first clause, but nothing reaches the caller, the history or the console. If the turn
ends on exactly these words with the history unchanged, the turn takes this reply over instead of asking
the LLM again (``adopt``), and the first clause's audio, already synthesised, starts at once. If the caller
speaks on, the reply is cancelled: its LLM and TTS streams are closed, nothing was heard, nothing written.

A held reply is keyed by the transcript and the exact message list it was asked with, so a reply to words
that are no longer the turn's can never be spoken: at worst it is dropped, and counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import structlog

from dialogue.llm import LanguageModel, Message, TextDelta, ToolCall, ToolSpec
from dialogue.sentences import SentenceSplitter
from media.speech import TextToSpeech

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
Part = TextDelta | ToolCall


class HeldSpeech:
    """The first clause's TTS stream, run ahead and kept; read once by the speaker as if it were the engine.

    Implements ``TextToSpeech`` for exactly its one text, so the speaker's failover (backup voice, fallback
    line) applies to it unchanged: an error of the early stream is raised when the speaker reads it.
    """

    def __init__(self, engine: TextToSpeech, text: str, spawn: Spawn) -> None:
        self.name = engine.name
        self._engine = engine
        self.text = text
        self.first_byte_at: float | None = None
        self._chunks: list[bytes] = []
        self._error: BaseException | None = None
        self._done = False
        self._more = asyncio.Event()
        self._task = spawn(self._run(), "preempt-tts")

    @property
    def cache_key(self) -> str:
        return self._engine.cache_key

    async def _run(self) -> None:
        try:
            async with aclosing(_iterate(self._engine.synthesize(self.text))) as stream:
                async for chunk in stream:
                    if chunk and self.first_byte_at is None:
                        self.first_byte_at = time.monotonic()
                    self._chunks.append(chunk)
                    self._more.set()
        except Exception as exc:  # noqa: BLE001 - raised to the speaker, which owns the failover
            self._error = exc
        finally:
            self._done = True
            self._more.set()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if text != self.text:
            raise ValueError("held speech is for another text")
        sent = 0
        while True:
            while sent < len(self._chunks):
                sent += 1
                yield self._chunks[sent - 1]
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            self._more.clear()
            await self._more.wait()

    def cancel(self) -> None:
        self._task.cancel()


_T = TypeVar("_T")


async def _iterate(stream: AsyncIterator[_T]) -> AsyncGenerator[_T]:
    """An async generator around any provider stream, so ``aclosing`` closes it on cancel."""
    try:
        async for item in stream:
            yield item
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


class PreemptiveReply:
    """One held reply: the LLM stream for ``transcript`` and the TTS of its first clause."""

    def __init__(
        self,
        transcript: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        llm: LanguageModel,
        tts: TextToSpeech,
        first_clause_words: int,
        spawn: Spawn,
    ) -> None:
        self.transcript = transcript
        self.messages = list(messages)
        self.started_at = time.monotonic()
        self.first_token_at: float | None = None
        self.first_clause_at: float | None = None
        self.held: HeldSpeech | None = None
        self._tts = tts
        self._spawn = spawn
        self._splitter = SentenceSplitter(first_clause_words=first_clause_words)
        self._parts: list[Part] = []
        self._error: BaseException | None = None
        self._done = False
        self._more = asyncio.Event()
        self._task = spawn(self._run(llm, tools), "preempt-llm")

    async def _run(self, llm: LanguageModel, tools: Sequence[ToolSpec]) -> None:
        try:
            async with aclosing(_iterate(llm.stream_reply(self.messages, list(tools)))) as stream:
                async for part in stream:
                    if self.first_token_at is None:
                        self.first_token_at = time.monotonic()
                    self._parts.append(part)
                    self._more.set()
                    if isinstance(part, TextDelta) and self.held is None:
                        clauses = self._splitter.push(part.text)
                        if clauses:
                            self.first_clause_at = time.monotonic()
                            self.held = HeldSpeech(self._tts, clauses[0], self._spawn)
        except Exception as exc:  # noqa: BLE001 - raised to the turn that adopts this reply, if any
            self._error = exc
        finally:
            self._done = True
            self._more.set()

    def matches(self, transcript: str, messages: Sequence[Message]) -> bool:
        """True when the turn's words and the history it would ask with are exactly this reply's."""
        return transcript == self.transcript and list(messages) == self.messages

    async def stream(self) -> AsyncIterator[Part]:
        """The LLM's parts so far, then the rest as they come: the adopting turn reads it like the LLM."""
        read = 0
        while True:
            while read < len(self._parts):
                read += 1
                yield self._parts[read - 1]
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            self._more.clear()
            await self._more.wait()

    def speech_for(self, text: str) -> HeldSpeech | None:
        """The held TTS stream if ``text`` is the clause it was started for."""
        return self.held if self.held is not None and self.held.text == text else None

    def cancel(self) -> None:
        """Closes the LLM and TTS requests: nothing of this reply is heard, written or kept."""
        self._task.cancel()
        if self.held is not None:
            self.held.cancel()


class Preemption:
    """One per call: the held reply of the current pause, and what became of earlier ones."""

    def __init__(
        self,
        call_sid: str,
        *,
        enabled: bool,
        llm: LanguageModel,
        tts: TextToSpeech,
        first_clause_words: int,
        spawn: Spawn,
    ) -> None:
        self.enabled = enabled
        self._llm = llm
        self._tts = tts
        self._first_clause_words = first_clause_words
        self._spawn = spawn
        self.current: PreemptiveReply | None = None
        self.started = 0
        self.used = 0
        self.dropped = 0
        """Held replies that were never spoken: the caller went on, or the turn's words differed."""
        self._log = structlog.get_logger().bind(call_sid=call_sid)

    def start(self, transcript: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> None:
        self.drop("a newer pause")
        if not self.enabled:
            return
        self.started += 1
        self.current = PreemptiveReply(
            transcript,
            messages,
            tools,
            llm=self._llm,
            tts=self._tts,
            first_clause_words=self._first_clause_words,
            spawn=self._spawn,
        )
        self._log.info("reply_preempted", words=len(transcript.split()))

    def take(self) -> PreemptiveReply | None:
        """Hands the held reply to a turn that just started; the turn adopts it or drops it."""
        reply, self.current = self.current, None
        return reply

    def drop(self, why: str, reply: PreemptiveReply | None = None) -> None:
        reply = reply or self.current
        if reply is None:
            return
        if reply is self.current:
            self.current = None
        reply.cancel()
        self.dropped += 1
        self._log.info("preemptive_reply_dropped", why=why)

    def adopted(self, reply: PreemptiveReply, turn_started: float) -> float:
        """Counts ``reply`` as used; returns how much of the LLM's wait the head start saved (ms)."""
        self.used += 1
        return round((turn_started - reply.started_at) * 1000, 1)
