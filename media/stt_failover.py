"""Speech-to-text that fails over instead of waiting: hedged requests and a local engine behind the cloud.

A hung transcription request costs the caller its whole STT budget in silence, although the same request
sent again (over another pooled connection, often to another replica) or the local engine would answer in
a fraction of it. So the engines form a chain: the first starts at once; the next starts when the previous
one failed, or when nothing has answered within ``hedge_after_s`` of the last start. The first transcript
wins and every other request still running is cancelled. Only when every engine failed does the caller get
the turn's fallback sentence, and the error raised is the first engine's, which says the most about the
provider.

A non-retryable error (401, a malformed answer) makes every later engine of the same name pointless: the
same request would fail the same way, so those are skipped. The overall deadline stays the turn's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

import structlog

from media.budget import classify
from media.errors import ProviderError
from media.speech import SpeechToText, Transcript, Utterance

log = structlog.get_logger()


def chain_name(names: Iterable[str]) -> str:
    """``"a → b"``, with ``(hedged)`` where an engine is asked twice: what ``voicebot check`` shows."""
    listed = list(names)
    unique = list(dict.fromkeys(listed))
    return " → ".join(unique) + (" (hedged)" if len(unique) < len(listed) else "")


class FailoverSpeechToText:
    """``engines[0]`` first; each later engine after a failure or ``hedge_after_s`` without an answer."""

    def __init__(self, engines: Sequence[SpeechToText], *, hedge_after_s: float) -> None:
        if not engines:
            raise ValueError("FailoverSpeechToText needs at least one engine")
        self.engines = tuple(engines)
        self.hedge_after_s = hedge_after_s
        self.name = chain_name(e.name for e in self.engines)

    async def warm(self) -> None:
        """Loads what the engines load lazily (the local model), so a failover never waits for it."""
        for engine in self.engines:
            warm = getattr(engine, "warm", None)
            if warm is not None:
                await warm()

    def start_loading(self) -> None:
        """Starts background loading in the engines that offer it (the local engine, at server start-up)."""
        for engine in dict.fromkeys(self.engines):
            start = getattr(engine, "start_loading", None)
            if start is not None:
                start()

    async def transcribe(self, utterance: Utterance) -> Transcript:
        loop = asyncio.get_running_loop()
        running: dict[asyncio.Task[Transcript], int] = {}
        errors: list[ProviderError] = []
        dead_names: set[str] = set()
        next_index = 0

        def start_next() -> None:
            nonlocal next_index
            while next_index < len(self.engines):
                engine = self.engines[next_index]
                next_index += 1
                if engine.name in dead_names:
                    continue
                if next_index > 1:
                    log.info("stt_failover_start", engine=engine.name, attempt=next_index)
                running[asyncio.ensure_future(engine.transcribe(utterance))] = next_index - 1
                return

        try:
            start_next()
            hedge_at = loop.time() + self.hedge_after_s
            while running:
                more = next_index < len(self.engines)
                timeout = max(0.0, hedge_at - loop.time()) if more else None
                done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:  # nobody answered in time: hedge with the next engine
                    start_next()
                    hedge_at = loop.time() + self.hedge_after_s
                    continue
                for task in done:
                    index = running.pop(task)
                    exc = task.exception()
                    if exc is None:
                        if index > 0:
                            log.info("stt_failover_won", engine=self.engines[index].name, attempt=index + 1)
                        return task.result()
                    err = classify(exc, "stt")
                    errors.append(err)
                    if not err.retryable:
                        dead_names.add(self.engines[index].name)
                    log.info("stt_engine_failed", engine=self.engines[index].name, reason=err.detail)
                if not running:
                    start_next()
                    hedge_at = loop.time() + self.hedge_after_s
            raise errors[0]
        finally:
            await _cancel(running)


async def _cancel(tasks: dict[asyncio.Task[Transcript], int]) -> None:
    """Cancels the losers and waits for them, so no request outlives the transcription that needed it."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
