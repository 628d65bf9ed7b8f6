from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import console.store
from console.records import Base, CallRecord
from console.store import CallStore, async_url
from dialogue.events import CallEnded, TranscriptEvent, TurnDecision
from tests.console.conftest import call_events


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[CallStore]:
    store = CallStore(store_url, instance="host-a-1")
    await store.start()
    yield store
    await store.aclose()


def test_urls_people_paste_get_an_async_driver() -> None:
    assert async_url("postgres://u:p@db/calls") == "postgresql+asyncpg://u:p@db/calls"
    assert async_url("postgresql://db/calls") == "postgresql+asyncpg://db/calls"
    assert async_url("sqlite:///var/x.db") == "sqlite+aiosqlite:///var/x.db"
    assert async_url("postgresql+psycopg://db/calls") == "postgresql+psycopg://db/calls"


async def test_each_finished_turn_is_on_disk_before_the_call_ends(store: CallStore) -> None:
    for event in call_events("CA1", ended=False):
        store.publish(event)
    await store.flush()
    view = await store.load_call("CA1")
    assert view is not None
    assert view.live
    assert [t.role for t in view.transcript] == ["bot", "caller", "bot"]
    assert view.transcript[-1].interrupted
    assert view.transcript[-1].cut == "bis freitags geöffnet."
    [summary] = await store.recent_calls()
    assert (summary.turns, summary.last_latency_ms, summary.ended_at) == (1, 700.0, None)


async def test_a_finished_call_replays_like_the_live_page(store: CallStore) -> None:
    for event in call_events("CA1"):
        store.publish(event)
    await store.flush()
    view = await store.load_call("CA1")
    assert view is not None
    assert not view.live
    assert view.end_reason == "caller_hangup"
    assert view.state == "hangup"
    assert view.caller == "+49 *** ***123"
    assert [t.dest for t in view.transitions][-2:] == ["listening", "hangup"]
    assert len(view.speech) == 1
    assert [p.name for p in view.protocol] == ["mark", "clear"]
    assert view.latencies[0].voice_to_voice_ms == 700.0
    [summary] = await store.recent_calls()
    assert summary.duration_s == 8.0
    assert summary.end_reason == "caller_hangup"


async def test_a_call_whose_start_was_missed_is_still_kept(store: CallStore) -> None:
    store.publish(TranscriptEvent(call_sid="CA7", at=5.0, role="caller", text="Hallo?", turn=1))
    store.publish(CallEnded(call_sid="CA7", at=6.0, reason="stop"))
    await store.flush()
    view = await store.load_call("CA7")
    assert view is not None
    assert [t.text for t in view.transcript] == ["Hallo?"]
    assert await store.load_call("nope") is None


async def test_history_is_newest_first_and_survives_a_restart(store_url: str) -> None:
    url = store_url
    first = CallStore(url)
    await first.start()
    for i in range(3):
        for event in call_events(f"CA{i}", t0=1000.0 + i):
            first.publish(event)
    await first.aclose()
    second = CallStore(url)
    await second.start()
    try:
        assert [c.call_sid for c in await second.recent_calls(limit=2)] == ["CA2", "CA1"]
    finally:
        await second.aclose()


async def test_two_instances_starting_at_once_on_one_sqlite_file_both_migrate(tmp_path: Path) -> None:
    """Two bots on one machine (workers, or the scenario runner's bots) share a SQLite file: one migrates,
    the other finds the work done, instead of both creating the tables."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    stores = [CallStore(url), CallStore(url)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        assert stores[0].revision == stores[1].revision != ""
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))


async def test_two_stores_on_their_own_files_migrate_at_once_in_one_process(tmp_path: Path) -> None:
    """The scenario runner starts several bots on one event loop, each with its own database: Alembic's
    module-global context must not carry one bot's migration into the other's."""
    stores = [CallStore(f"sqlite:///{tmp_path / f'calls-{i}.db'}") for i in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        assert len({s.revision for s in stores}) == 1
        assert stores[0].revision != ""
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))


async def test_publish_never_waits_even_when_the_writer_is_behind(store: CallStore) -> None:
    commits = store.commits
    for i in range(2000):
        store.publish(TranscriptEvent(call_sid=f"CA{i % 20}", at=float(i), role="caller", text="x", turn=i))
    # All 2000 were taken while the writer could not run (publish is synchronous and the loop never got
    # back to it): nothing was committed in between, so no publish waited for a write.
    assert store.commits == commits
    await store.flush()
    assert len(await store.recent_calls(limit=100)) == 20


async def test_events_trickling_in_from_many_calls_share_one_commit(
    store: CallStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two hundred calls publish a few events a second each; a commit per event would cost the process more
    # CPU than their audio. Events that arrive within the linger window go into one transaction (a call's
    # start and end are written at once, see below).
    monkeypatch.setattr(console.store, "LINGER_S", 30.0)
    for n in range(20):
        for event in call_events(f"CA{n}", ended=False)[1:]:
            store.publish(event)
            await asyncio.sleep(0.001)
    assert store.commits == 0  # the writer is holding the first batch open
    await asyncio.wait_for(store.flush(), 10)  # far less than the linger: flush cuts it short
    assert store.commits == 1
    assert len(await store.recent_calls()) == 20


async def test_after_a_flush_the_writer_lingers_again(
    store: CallStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.store, "LINGER_S", 30.0)
    store.publish(call_events("CA1")[1])
    await asyncio.wait_for(store.flush(), 10)
    for event in call_events("CA2", ended=False)[1:]:
        store.publish(event)
        await asyncio.sleep(0.001)
    assert store.commits == 1
    await asyncio.wait_for(store.flush(), 10)
    assert store.commits == 2
    assert (await store.load_call("CA2")) is not None


async def test_each_call_row_names_the_instance_that_holds_it(store: CallStore) -> None:
    for event in call_events("CA1"):
        store.publish(event)
    await store.flush()
    async with store.sessions() as session:
        row = await session.get(CallRecord, "CA1")
    assert row is not None
    assert row.instance == "host-a-1"  # its recording, if any, is a file on that machine


async def test_open_calls_of_a_dead_instance_are_marked_lost_and_others_are_untouched(
    store: CallStore, store_url: str
) -> None:
    other = CallStore(store_url, instance="host-b-2")
    await other.start()
    try:
        for event in call_events("CAdead", ended=False):
            store.publish(event)
        for event in call_events("CAalive", ended=False):
            other.publish(event)
        for event in call_events("CAdone"):
            store.publish(event)
        await store.flush()
        await other.flush()
        assert await other.mark_lost({"host-b-2"}, now=9999.0) == 1  # host-a-1 no longer beats
        by_sid = {c.call_sid: c for c in await other.recent_calls()}
        assert (by_sid["CAdead"].end_reason, by_sid["CAdead"].ended_at) == ("lost", 9999.0)
        assert by_sid["CAalive"].ended_at is None
        assert by_sid["CAdone"].end_reason == "caller_hangup"
    finally:
        await other.aclose()


async def test_the_migrated_schema_matches_the_model(store: CallStore) -> None:
    assert store.revision == "0002"
    engine = store.sessions.kw["bind"]

    def differences(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_a_database_from_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    # The schema as create_all made it before the privacy work added caller_hash, with one call in it.
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE calls (call_sid VARCHAR(64) PRIMARY KEY, stream_sid VARCHAR(64), caller VARCHAR(64),
                transport VARCHAR(16), started_at FLOAT, ended_at FLOAT, end_reason VARCHAR(64),
                duration_s FLOAT, turns INTEGER, last_latency_ms FLOAT);
            CREATE TABLE turns (id INTEGER PRIMARY KEY, call_sid VARCHAR(64), turn INTEGER, role VARCHAR(8),
                text TEXT, cut TEXT, interrupted BOOLEAN, at FLOAT);
            CREATE TABLE call_events (id INTEGER PRIMARY KEY, call_sid VARCHAR(64), kind VARCHAR(24),
                at FLOAT, data TEXT);
            INSERT INTO calls VALUES ('CAold', 'MZ1', '+49 *** ***123', 'twilio', 1, 2, 'stop', 1, 0, NULL);
            """
        )
    store = CallStore(f"sqlite+aiosqlite:///{path}")
    await store.start()
    try:
        assert store.revision == "0002"
        [old] = await store.recent_calls()
        assert old.call_sid == "CAold"
        async with store.sessions() as session:
            row = await session.get(CallRecord, "CAold")
        assert row is not None
        assert (row.caller_hash, row.instance) == ("", "")
    finally:
        await store.aclose()


async def test_a_calls_start_and_end_are_written_without_lingering(
    store: CallStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once per call each: a killed instance's call must be in the store to be marked lost, and a finished
    # call must not be reopened by losing its end with the batch in flight.
    monkeypatch.setattr(console.store, "LINGER_S", 30.0)
    started, *middle, ended = call_events("CA1")
    store.publish(started)
    await asyncio.wait_for(store._queue.join(), 10)  # committed long before the 30 s linger
    assert store.commits == 1
    for event in middle:
        store.publish(event)
    store.publish(ended)
    await asyncio.wait_for(store._queue.join(), 10)
    [summary] = await store.recent_calls()
    assert summary.end_reason == "caller_hangup"


async def test_end_of_turn_decisions_are_kept_with_their_reasons(store: CallStore) -> None:
    events = call_events("CA9")
    decisions = [
        TurnDecision(
            call_sid="CA9",
            at=events[6].at,
            verdict="incomplete",
            reason="ends on preposition 'wegen'",
            hold_ms=1500,
        ),
        TurnDecision(
            call_sid="CA9",
            at=events[6].at,
            ended=True,
            verdict="complete",
            reason="complete: question mark",
            hold_ms=200,
            waited_ms=200,
        ),
    ]
    for event in [*events[:7], *decisions, *events[7:]]:
        store.publish(event)
    await store.flush()
    view = await store.load_call("CA9")
    assert view is not None
    rows = [(p.name, p.detail) for p in view.protocol]
    assert rows == [
        ("mark", "greeting-0"),
        ("pause: incomplete", "ends on preposition 'wegen'; wait up to 1500 ms"),
        ("turn ended", "after 200 ms of silence (complete: question mark)"),
        ("clear", "barge-in"),
    ]
