"""Time budgets, retries and error classification shared by every cloud adapter.

A caller on the phone hears silence while a stage runs, so each stage gets a hard deadline of its own
instead of the SDK defaults (600 s for OpenAI, 240 s for ElevenLabs). Retries happen only before anything was
produced and only while the remaining budget can still fit an attempt; the SDKs' own retries are switched
off so that this module alone decides. Every failure leaves as ``ProviderError`` with ``retryable`` set, so
the call session can choose between one more try, a fallback phrase and a handover without knowing any SDK.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import elevenlabs.core.api_error as el_errors
import httpx
import httpx2
import openai
import structlog

from media.errors import ProviderError

T = TypeVar("T")

log = structlog.get_logger()

RETRYABLE_STATUS: Final = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""Statuses where the same request may succeed a moment later; any other 4xx is our fault, 5xx is theirs."""

MIN_ATTEMPT_S: Final = 0.25
"""An attempt with less time than this left would only turn a clear error into a vaguer timeout."""

BACKOFF_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class StageBudgets:
    """Each stage's deadline in seconds: the one source of the defaults of the settings and the adapters.

    The adapter of a stage owns its deadline (retries fit inside it); the call only catches the error and
    speaks around it, so there is no second, disagreeing timer around a stage. The STT budget starts after
    the end-of-turn silence: the caller waits ``END_OF_TURN_SILENCE_MS`` plus this before a fallback.
    """

    stt_s: float = 3.0
    llm_first_token_s: float = 1.5
    """With the LLM hedge at 0.8 s, a hung primary still leaves the fallback model time to answer within
    the 1.5 s a caller waits for a real answer (see bench/faults.py)."""
    llm_total_s: float = 15.0
    tts_first_byte_s: float = 1.5


DEFAULT_BUDGETS: Final = StageBudgets()


def status_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def classify(exc: BaseException, stage: str) -> ProviderError:
    """Maps an SDK, transport or parsing exception to a ``ProviderError`` that says whether to retry.

    Bodies of provider errors are reduced to a short message: they never contain our key, but they may be
    long, and the detail ends up in logs and on the console.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(
        exc, TimeoutError | httpx.TimeoutException | httpx2.TimeoutException | openai.APITimeoutError
    ):
        return ProviderError(stage, "timed out", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        return _status_error(stage, exc.status_code, str(body.get("message") or exc.message))
    if isinstance(exc, el_errors.ApiError) and exc.status_code is not None:
        return _status_error(stage, exc.status_code, _elevenlabs_message(exc.body))
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError | httpx2.TransportError):
        return ProviderError(stage, f"connection failed: {type(exc).__name__}", retryable=True)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError | openai.APIResponseValidationError):
        return ProviderError(stage, f"malformed response: {type(exc).__name__}", retryable=False)
    if isinstance(exc, openai.APIError):
        # A mid-stream ``data: {"error": …}`` event: the server gave up on this request, another may work.
        return ProviderError(stage, f"provider error: {exc.message}", retryable=True)
    if isinstance(exc, el_errors.ApiError):
        return ProviderError(stage, f"provider error: {_elevenlabs_message(exc.body)}", retryable=True)
    return ProviderError(stage, f"unexpected {type(exc).__name__}: {exc}", retryable=False)


def _status_error(stage: str, status: int, message: str) -> ProviderError:
    return ProviderError(
        stage, f"HTTP {status}: {message[:200]}", retryable=status_retryable(status), status=status
    )


def _elevenlabs_message(body: Any) -> str:
    """ElevenLabs puts ``{"detail": {"status": …, "message": …}}`` (or a FastAPI list) in error bodies."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return f"{detail.get('status', '')} {detail.get('message', '')}".strip()
    return str(detail)[:200]


def _remaining(deadline: float) -> float:
    return deadline - asyncio.get_running_loop().time()


async def _retry_or_raise(
    exc: Exception, stage: str, attempt: int, max_attempts: int, deadline: float
) -> None:
    """Backs off and returns when another attempt fits the budget, else raises the classified error."""
    err = classify(exc, stage)
    if not (err.retryable and attempt < max_attempts and _remaining(deadline) > MIN_ATTEMPT_S + BACKOFF_S):
        raise err from exc
    log.info("provider_retry", stage=stage, attempt=attempt, reason=err.detail)
    await asyncio.sleep(BACKOFF_S * attempt * (1 + random.random() / 2))


async def call_with_budget(
    attempt: Callable[[float], Awaitable[T]],
    *,
    stage: str,
    budget_s: float,
    max_attempts: int = 2,
) -> T:
    """Runs ``attempt(time_left_s)`` until it succeeds, the error is final, or the budget is spent.

    ``attempt`` receives the seconds left so it can hand them to the SDK as its own timeout as well: then a
    timed-out request is torn down by the HTTP client, not just abandoned.
    """
    deadline = asyncio.get_running_loop().time() + budget_s
    n = 0
    while True:
        n += 1
        try:
            async with asyncio.timeout_at(deadline):
                return await attempt(_remaining(deadline))
        except TimeoutError:
            raise ProviderError(stage, f"no answer within {budget_s:.1f} s", retryable=True) from None
        except Exception as exc:  # noqa: BLE001 - classified, then retried or re-raised as ProviderError
            await _retry_or_raise(exc, stage, n, max_attempts, deadline)


async def stream_with_budget(
    open_stream: Callable[[], AsyncIterator[T]],
    *,
    stage: str,
    first_item_s: float,
    idle_s: float,
    total_s: float,
    max_attempts: int = 2,
) -> AsyncIterator[T]:
    """Yields from ``open_stream()`` with a deadline for the first item, for each gap and for the whole.

    Before the first item a retryable failure opens the stream again (if the first-item budget allows);
    after it, any failure is final, because the caller may already be hearing the part that arrived.
    The underlying iterator is always closed, also when the consumer stops early or is cancelled (barge-in).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    total_deadline = start + total_s
    first_deadline = min(start + first_item_s, total_deadline)
    n = 0
    while True:
        n += 1
        async with aclosing(_as_closable(open_stream())) as stream:
            try:
                async with asyncio.timeout_at(first_deadline):
                    first = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderError(stage, f"nothing within {first_item_s:.1f} s", retryable=True) from None
            except Exception as exc:  # noqa: BLE001 - classified, then retried or re-raised
                await _retry_or_raise(exc, stage, n, max_attempts, first_deadline)
                continue
            yield first
            while True:
                deadline = min(loop.time() + idle_s, total_deadline)
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await anext(stream)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    why = "stalled" if deadline < total_deadline else f"not done within {total_s:.1f} s"
                    raise ProviderError(stage, why, retryable=True) from None
                except Exception as exc:
                    raise classify(exc, stage) from exc
                yield item


class _Closable(AsyncIterator[T]):
    """Gives any async iterator an ``aclose`` so ``aclosing`` works on SDK streams and generators alike."""

    def __init__(self, inner: AsyncIterator[T]) -> None:
        self._inner = inner

    def __aiter__(self) -> _Closable[T]:
        return self

    async def __anext__(self) -> T:
        return await anext(self._inner)

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()


def _as_closable(inner: AsyncIterator[T]) -> _Closable[T]:
    return _Closable(inner)
