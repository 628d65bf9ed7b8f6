"""A language model that fails over before the first token and never after it.

A model that has not started to answer costs nothing to abandon, so the fallback (another model, another
endpoint, or the same request sent again over another connection) is asked as soon as the primary fails
before its first part, or has produced nothing within ``hedge_after_s``. From then on the first stream to
produce a part wins and the other is cancelled. Once a part has been produced the caller may already be
hearing it, so a later failure is the winner's and is raised as it is: switching then would make the bot
start its sentence again in another voice of mind.

Each stream runs in a task of its own that pumps into a queue; the consumer only reads queues. That keeps
every SDK stream (and its HTTP response) opened, read and closed in one task, whichever stream wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import structlog

from dialogue.llm import LanguageModel, Message, ReplyPart, ToolSpec
from media.budget import classify
from media.errors import ProviderError
from media.stt_failover import chain_name

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class _End:
    """The stream finished; ``error`` is set when it failed."""

    error: ProviderError | None = None


class _Pump:
    """Reads one stream to its end in its own task; tells ``started`` once its first outcome is known."""

    def __init__(self, index: int, stream: AsyncIterator[ReplyPart], started: asyncio.Queue[_Pump]) -> None:
        self.index = index
        self.parts: asyncio.Queue[ReplyPart | _End] = asyncio.Queue()
        self.first_error: ProviderError | None = None
        self._started = started
        self._announced = False
        self.task = asyncio.create_task(self._run(stream))

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            self._started.put_nowait(self)

    async def _run(self, stream: AsyncIterator[ReplyPart]) -> None:
        try:
            async for part in stream:
                self.parts.put_nowait(part)
                self._announce()
            self.parts.put_nowait(_End())
        except Exception as exc:  # noqa: BLE001 - every failure becomes a classified ProviderError
            err = classify(exc, "llm")
            if not self._announced:
                self.first_error = err
            self.parts.put_nowait(_End(err))
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        self._announce()

    async def cancel(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class FailoverLanguageModel:
    """``models[0]`` first; the next after a failure before any part, or ``hedge_after_s`` of nothing."""

    def __init__(self, models: Sequence[LanguageModel], *, hedge_after_s: float) -> None:
        if not models:
            raise ValueError("FailoverLanguageModel needs at least one model")
        self.models = tuple(models)
        self.hedge_after_s = hedge_after_s
        self.name = chain_name(e.name for e in self.models)

    def stream_reply(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        return self._stream(tuple(messages), tuple(tools))

    async def _stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        started: asyncio.Queue[_Pump] = asyncio.Queue()
        pumps: list[_Pump] = []
        try:
            winner = await self._race(messages, tools, started, pumps)
            for pump in pumps:
                if pump is not winner:
                    await pump.cancel()
            while True:
                part = await winner.parts.get()
                if isinstance(part, _End):
                    if part.error is not None:
                        raise part.error
                    return
                yield part
        finally:
            for pump in pumps:
                await pump.cancel()

    async def _race(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        started: asyncio.Queue[_Pump],
        pumps: list[_Pump],
    ) -> _Pump:
        """Starts models until one produces a first part (or ends cleanly); raises when all failed first."""
        loop = asyncio.get_running_loop()
        errors: list[ProviderError] = []
        dead_names: set[str] = set()
        next_index = 0
        live = 0

        def start_next() -> bool:
            nonlocal next_index, live
            while next_index < len(self.models):
                model = self.models[next_index]
                next_index += 1
                if model.name in dead_names:
                    continue
                if next_index > 1:
                    log.info("llm_failover_start", model=model.name, attempt=next_index)
                pumps.append(_Pump(next_index - 1, model.stream_reply(messages, tools), started))
                live += 1
                return True
            return False

        start_next()
        hedge_at = loop.time() + self.hedge_after_s
        while live:
            deadline = hedge_at if next_index < len(self.models) else None
            try:
                async with asyncio.timeout_at(deadline):
                    pump = await started.get()
            except TimeoutError:
                start_next()
                hedge_at = loop.time() + self.hedge_after_s
                continue
            live -= 1
            if pump.first_error is None:
                if pump.index > 0:
                    log.info("llm_failover_won", model=self.models[pump.index].name, attempt=pump.index + 1)
                return pump
            errors.append(pump.first_error)
            if not pump.first_error.retryable:
                dead_names.add(self.models[pump.index].name)
            log.info("llm_model_failed", model=self.models[pump.index].name, reason=pump.first_error.detail)
            if not live and start_next():
                hedge_at = loop.time() + self.hedge_after_s
        raise errors[0]
