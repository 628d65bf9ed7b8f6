"""The call store: an event sink that writes call records in the background, and the history queries.

``publish`` only appends to a queue, so a slow disk or database never reaches a call. A writer task lets
events gather for up to ``LINGER_S`` and commits them in one transaction: with a hundred calls a commit per
trickling event took several percent of the event loop's core. The live console never reads from here (it
has the hub), so history lagging by a fraction of a second costs nothing; a crash loses at most the batch in
flight. SQLite under the data directory by default; any SQLAlchemy async URL (``postgresql://`` is mapped to
asyncpg) otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from console import migrate
from console.records import CallRecord, EventRecord, TurnRecord
from console.views import CallView, mask_number, replay
from console.wire import decode_event
from dialogue.events import CallEnded, CallEvent, CallStarted, TranscriptEvent, TurnLatency

QUEUE_LIMIT: Final = 20_000
BATCH_LIMIT: Final = 500
LINGER_S: Final = 0.5
_LOGGED_KINDS: Final = frozenset({"state_changed", "latency", "speech", "protocol", "turn_decision", "error"})

log = structlog.get_logger()


def async_url(url: str) -> str:
    """Accepts the URLs people paste (``postgres://``, ``sqlite:///``) and picks the async driver."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One row of the calls list, from the live view or from the store."""

    call_sid: str
    caller: str
    transport: str
    started_at: float
    ended_at: float | None
    end_reason: str
    duration_s: float
    turns: int
    last_latency_ms: float | None
    state: str = ""

    @classmethod
    def of(cls, view: CallView) -> CallSummary:
        return cls(
            view.call_sid,
            view.caller,
            view.transport,
            view.started_at,
            view.ended_at,
            view.end_reason,
            view.duration_s(),
            view.caller_turns,
            view.last_latency_ms,
            view.state,
        )


class CallStore:
    def __init__(self, url: str, *, caller_key: bytes = b"", instance: str = "") -> None:
        self.url = async_url(url)
        self.instance = instance
        """Written on each call's row: which process (and machine) holds the call and its recording."""
        self.caller_key = caller_key
        self._caller_hashes: dict[str, str] = {}
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue(QUEUE_LIMIT)
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._task: asyncio.Task[None] | None = None
        self._flush_now = asyncio.Event()
        self.revision = ""
        self.dropped = 0
        self.commits = 0

    # --- EventSink ---------------------------------------------------------------------------------------
    def publish(self, event: CallEvent) -> None:
        if event.kind not in _LOGGED_KINDS and event.kind not in ("call_started", "transcript", "call_ended"):
            return
        try:
            self._queue.put_nowait(event)
            if isinstance(event, CallStarted | CallEnded):
                # Once per call each, written at once: a killed instance's call is in the store to be
                # marked lost, and a finished one cannot be.
                self._flush_now.set()
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("call_store_behind", dropped=self.dropped, kind=event.kind)

    def note_caller(self, call_sid: str, caller_hash: str) -> None:
        """The keyed hash of a call's number, kept on its row when the call's start is written."""
        if caller_hash:
            self._caller_hashes[call_sid] = caller_hash
            if len(self._caller_hashes) > QUEUE_LIMIT:  # starts that never came must not pile up
                self._caller_hashes.pop(next(iter(self._caller_hashes)))

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        assert self._sessions is not None, "call store not started"
        return self._sessions

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.url.startswith("sqlite") and ":///" in self.url:
            path = self.url.split(":///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._engine = create_async_engine(self.url)
        if self.url.startswith("sqlite"):
            sa_event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        self.revision = await migrate.upgrade(self._engine)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        self._task = asyncio.create_task(self._write_forever(), name="call-store-writer")
        log.info("call_store_started", backend=self.url.split(":", 1)[0], schema=self.revision)

    async def flush(self) -> None:
        """Returns once everything published so far is committed (tests, shutdown)."""
        if self._task is not None:
            self._flush_now.set()
            await self._queue.join()

    async def aclose(self) -> None:
        if self._task is not None:
            self._flush_now.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=5)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # --- writing -----------------------------------------------------------------------------------------
    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._queue.qsize() < BATCH_LIMIT and not self._flush_now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_now.wait(), LINGER_S)
            while len(batch) < BATCH_LIMIT and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if self._queue.empty():
                self._flush_now.clear()
            try:
                await self._write(batch)
                self.commits += 1
                for event in batch:
                    if isinstance(event, CallStarted):
                        log.info("call_record_opened", call_sid=event.call_sid)
                    elif isinstance(event, CallEnded):
                        log.info("call_record_closed", call_sid=event.call_sid, reason=event.reason)
            except Exception:  # a bad batch is logged and skipped; calls go on
                log.exception("call_store_write_failed", events=len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[CallEvent]) -> None:
        assert self._sessions is not None
        async with self._sessions.begin() as session:
            calls = await self._call_rows(session, batch)
            turns: list[dict[str, Any]] = []
            logged: list[dict[str, Any]] = []
            for event in batch:
                call = calls[event.call_sid]
                if isinstance(event, CallStarted):
                    call.stream_sid, call.caller = event.stream_sid, mask_number(event.caller)
                    call.transport, call.started_at = event.transport, event.at
                    call.caller_hash = self._caller_hashes.pop(event.call_sid, "")
                    call.instance = self.instance
                elif isinstance(event, TranscriptEvent):
                    turns.append(
                        {
                            "call_sid": event.call_sid,
                            "turn": event.turn,
                            "role": event.role,
                            "text": event.text,
                            "cut": event.cut,
                            "interrupted": event.interrupted,
                            "at": event.at,
                        }
                    )
                    call.turns += event.role == "caller"
                elif isinstance(event, CallEnded):
                    call.ended_at, call.end_reason, call.duration_s = event.at, event.reason, event.duration_s
                else:
                    if isinstance(event, TurnLatency) and event.first_audio_ms is not None:
                        call.last_latency_ms = event.first_audio_ms
                    data = json.dumps(event.to_dict(), separators=(",", ":"))
                    logged.append(
                        {"call_sid": event.call_sid, "kind": event.kind, "at": event.at, "data": data}
                    )
            if turns:  # bulk inserts: one statement per table and batch, not one ORM object per row
                await session.execute(insert(TurnRecord), turns)
            if logged:
                await session.execute(insert(EventRecord), logged)

    @staticmethod
    async def _call_rows(session: AsyncSession, batch: list[CallEvent]) -> dict[str, CallRecord]:
        """One query per batch; a call whose start was missed (store started mid-call) gets a row anyway."""
        first_seen = {e.call_sid: e.at for e in reversed(batch)}
        found = await session.scalars(select(CallRecord).where(CallRecord.call_sid.in_(first_seen)))
        calls = {c.call_sid: c for c in found}
        for sid, at in first_seen.items():
            if sid not in calls:
                calls[sid] = CallRecord(call_sid=sid, started_at=at, turns=0)
                session.add(calls[sid])
        await session.flush()  # call rows before the rows that reference them
        return calls

    async def mark_lost(self, alive: set[str], *, now: float) -> int:
        """Calls still open in the store whose instance is gone (``kill -9``, a lost machine) end as
        ``lost``; open calls of instances still alive are theirs and untouched. Returns how many."""
        assert self._sessions is not None
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(CallRecord)
                .where(CallRecord.ended_at.is_(None), CallRecord.instance.not_in(alive))
                .values(ended_at=now, end_reason="lost")
            )
        lost = int(getattr(result, "rowcount", 0) or 0)
        if lost:
            log.warning("calls_marked_lost", calls=lost)
        return lost

    # --- reading -----------------------------------------------------------------------------------------
    async def recent_calls(self, limit: int = 50) -> list[CallSummary]:
        assert self._sessions is not None
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CallRecord).order_by(CallRecord.started_at.desc()).limit(limit)
            )
            return [
                CallSummary(
                    r.call_sid,
                    r.caller,
                    r.transport,
                    r.started_at,
                    r.ended_at,
                    r.end_reason,
                    r.duration_s or 0.0,
                    r.turns,
                    r.last_latency_ms,
                )
                for r in rows
            ]

    async def load_call(self, call_sid: str) -> CallView | None:
        """The finished call as the call page shows it, rebuilt from its rows."""
        assert self._sessions is not None
        async with self._sessions() as session:
            call = await session.get(CallRecord, call_sid)
            if call is None:
                return None
            turns = await session.scalars(select(TurnRecord).where(TurnRecord.call_sid == call_sid))
            logged = await session.scalars(select(EventRecord).where(EventRecord.call_sid == call_sid))
            events: list[CallEvent] = [
                CallStarted(
                    call_sid=call_sid,
                    at=call.started_at,
                    stream_sid=call.stream_sid,
                    caller=call.caller,
                    transport=call.transport,
                )
            ]
            events += [
                TranscriptEvent(
                    call_sid=call_sid,
                    at=t.at,
                    role="bot" if t.role == "bot" else "caller",
                    text=t.text,
                    cut=t.cut,
                    turn=t.turn,
                    interrupted=t.interrupted,
                )
                for t in turns
            ]
            events += [e for e in (decode_event(r.data) for r in logged) if e is not None]
        view = replay(call_sid, events)
        if call.ended_at is not None:
            view.apply(CallEnded(call_sid=call_sid, at=call.ended_at, reason=call.end_reason))
        return view


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the history pages read while the writer commits; NORMAL sync is durable enough in WAL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
