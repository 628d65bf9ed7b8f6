from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import console.store
from console.store import CallStore, async_url
from dialogue.events import CallEnded, TranscriptEvent, TurnDecision
from tests.console.conftest import call_events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CallStore]:
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'calls.sqlite3'}")
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


async def test_history_is_newest_first_and_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"
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


async def test_publish_never_waits_even_when_the_writer_is_behind(store: CallStore) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(2000):
        store.publish(TranscriptEvent(call_sid=f"CA{i % 20}", at=float(i), role="caller", text="x", turn=i))
    assert loop.time() - start < 0.5
    await store.flush()
    assert len(await store.recent_calls(limit=100)) == 20


async def test_events_trickling_in_from_many_calls_share_one_commit(
    store: CallStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two hundred calls publish a few events a second each; a commit per event would cost the process more
    # CPU than their audio. Events that arrive within the linger window go into one transaction.
    monkeypatch.setattr(console.store, "LINGER_S", 30.0)
    for n in range(20):
        for event in call_events(f"CA{n}", ended=False):
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
    store.publish(call_events("CA1")[0])
    await asyncio.wait_for(store.flush(), 10)
    for event in call_events("CA2"):
        store.publish(event)
        await asyncio.sleep(0.001)
    assert store.commits == 1
    await asyncio.wait_for(store.flush(), 10)
    assert store.commits == 2
    assert (await store.load_call("CA2")) is not None


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
