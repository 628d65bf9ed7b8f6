"""Deleting what the bot keeps about calls: everything older than the retention period, or everything of
one caller (GDPR Art. 17). Rows of the call store and recordings on disk go together.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from console.records import CallRecord, EventRecord, TurnRecord
from console.store import CallStore
from media.recording import recording_path


@dataclass(slots=True)
class Deleted:
    calls: int = 0
    turns: int = 0
    events: int = 0
    recordings: int = 0
    call_sids: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "transcript_turns": self.turns,
            "events": self.events,
            "recordings": self.recordings,
        }


async def _delete_calls(store: CallStore, call_sids: list[str], recordings: Path, result: Deleted) -> None:
    if not call_sids:
        return
    async with store.sessions.begin() as session:
        for chunk in (call_sids[i : i + 500] for i in range(0, len(call_sids), 500)):
            turns = await session.execute(delete(TurnRecord).where(TurnRecord.call_sid.in_(chunk)))
            events = await session.execute(delete(EventRecord).where(EventRecord.call_sid.in_(chunk)))
            calls = await session.execute(delete(CallRecord).where(CallRecord.call_sid.in_(chunk)))
            result.turns += _count(turns)
            result.events += _count(events)
            result.calls += _count(calls)
    result.recordings += await asyncio.to_thread(_unlink_recordings, recordings, call_sids)
    result.call_sids += call_sids


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _unlink_recordings(recordings: Path, call_sids: list[str]) -> int:
    removed = 0
    for sid in call_sids:
        path = recording_path(recordings, sid)
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def _unlink_older(recordings: Path, cutoff: float) -> int:
    removed = 0
    if recordings.is_dir():
        for path in recordings.glob("*.wav"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


async def purge_older_than(store: CallStore, recordings: Path, cutoff: float) -> Deleted:
    """Calls that started before ``cutoff`` (epoch seconds), and recordings last written before it
    (a recording whose call row never reached the store is found by its file time)."""
    await store.flush()
    result = Deleted()
    async with store.sessions() as session:
        old = list(await session.scalars(select(CallRecord.call_sid).where(CallRecord.started_at < cutoff)))
    await _delete_calls(store, old, recordings, result)
    result.recordings += await asyncio.to_thread(_unlink_older, recordings, cutoff)
    return result


async def forget_caller(store: CallStore, recordings: Path, caller_hash: str) -> Deleted:
    """Every call of the caller whose keyed number hash is ``caller_hash``."""
    await store.flush()
    result = Deleted()
    if not caller_hash:
        return result
    async with store.sessions() as session:
        sids = list(
            await session.scalars(select(CallRecord.call_sid).where(CallRecord.caller_hash == caller_hash))
        )
    await _delete_calls(store, sids, recordings, result)
    return result
