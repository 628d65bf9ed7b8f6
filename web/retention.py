"""Retention: call records, transcripts and recordings older than ``RETENTION_DAYS`` are deleted, by a
task in the app and by ``voicebot purge``; ``voicebot forget`` deletes one caller's calls (Art. 17 GDPR).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from console.live_calls import LiveCalls
from console.retention import Deleted, forget_caller, purge_older_than
from console.store import CallStore
from media.privacy import caller_hash
from web.keys import instance_secret
from web.settings import Settings

log = structlog.get_logger()

DAY_S = 86_400.0


def cutoff(settings: Settings, now: float) -> float:
    return now - settings.retention_days * DAY_S


async def purge(
    settings: Settings, store: CallStore, *, now: float | None = None, live: LiveCalls | None = None
) -> Deleted:
    """``live``: this process's in-memory history, which must forget the same calls."""
    moment = time.time() if now is None else now
    result = await purge_older_than(store, settings.data_dir / "recordings", cutoff(settings, moment))
    if live is not None:
        live.drop(result.call_sids)
    if result.calls or result.recordings:
        log.info("retention_purged", retention_days=settings.retention_days, **result.summary())
    return result


async def forget(
    settings: Settings, store: CallStore, number: str, *, live: LiveCalls | None = None
) -> Deleted:
    digest = caller_hash(instance_secret(settings), number)
    result = await forget_caller(store, settings.data_dir / "recordings", digest)
    if live is not None:
        live.drop(result.call_sids)
    log.info("caller_forgotten", **result.summary())
    return result


async def purge_forever(
    settings: Settings,
    store: CallStore,
    *,
    live: LiveCalls | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Runs in the app's lifespan: once at start, then every ``PURGE_INTERVAL_S``; a failure is logged and
    retried next time, never fatal to calls."""
    while True:
        try:
            await purge(settings, store, now=clock(), live=live)
        except Exception:
            log.exception("retention_purge_failed")
        await asyncio.sleep(settings.purge_interval_s)


async def with_store(settings: Settings, action: Callable[[CallStore], object]) -> object:
    """For the CLI: opens the call store, runs ``action`` on it, closes it."""
    store = CallStore(settings.effective_database_url, caller_key=instance_secret(settings))
    await store.start()
    try:
        result = action(store)
        if asyncio.iscoroutine(result):
            result = await result
        return result
    finally:
        await store.aclose()
