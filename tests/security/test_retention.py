"""Retention and erasure: what the bot keeps about calls goes after RETENTION_DAYS, and all of one caller's
calls go on request (GDPR Art. 17), found by the keyed hash of the number."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from console.records import CallRecord
from console.store import CallStore
from dialogue.events import CallEnded, CallStarted, TranscriptEvent
from dialogue.machine import CallState
from media.privacy import caller_hash
from media.recording import recording_path
from simulator.call import place_call
from tests.security.conftest import CALLER
from tests.support.bot import PUBLIC_URL, running_bot
from web.cli import main
from web.console_routes import Console
from web.keys import instance_secret
from web.retention import DAY_S, forget, purge
from web.settings import Settings

pytestmark = pytest.mark.timeout(60)

NOW = 1_800_000_000.0
OTHER = "+4930111222333"


def settings_for(tmp_path: Path) -> Settings:
    return Settings(stt_provider="none", data_dir=tmp_path, retention_days=30)


async def seed(store: CallStore, settings: Settings, call_sid: str, started: float, number: str) -> Path:
    store.note_caller(call_sid, caller_hash(instance_secret(settings), number))
    store.publish(CallStarted(call_sid=call_sid, at=started, caller="+49******00"))
    store.publish(TranscriptEvent(call_sid=call_sid, at=started + 1, role="caller", text="Hallo", turn=1))
    store.publish(CallEnded(call_sid=call_sid, at=started + 2, reason="caller_hangup"))
    path = recording_path(settings.data_dir / "recordings", call_sid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    os.utime(path, (started + 2, started + 2))
    return path


async def test_purge_deletes_what_is_older_than_the_retention_period(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = CallStore(settings.effective_database_url, caller_key=instance_secret(settings))
    await store.start()
    try:
        old = await seed(store, settings, "CAold", NOW - 31 * DAY_S, CALLER)
        new = await seed(store, settings, "CAnew", NOW - 29 * DAY_S, CALLER)
        orphan = recording_path(tmp_path / "recordings", "CAorphan")  # a file whose row never got written
        orphan.write_bytes(b"RIFF")
        os.utime(orphan, (NOW - 40 * DAY_S, NOW - 40 * DAY_S))
        result = await purge(settings, store, now=NOW)
        assert result.summary() == {"calls": 1, "transcript_turns": 1, "events": 0, "recordings": 2}
        assert not old.exists()
        assert not orphan.exists()
        assert new.exists()
        assert await store.load_call("CAold") is None
        assert await store.load_call("CAnew") is not None
        again = await purge(settings, store, now=NOW)
        assert again.calls == 0
    finally:
        await store.aclose()


async def test_forget_deletes_one_callers_calls_only_and_stores_no_number(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = CallStore(settings.effective_database_url, caller_key=instance_secret(settings))
    await store.start()
    try:
        mine = [await seed(store, settings, f"CAmine{n}", NOW - n * DAY_S, CALLER) for n in range(3)]
        theirs = await seed(store, settings, "CAtheirs", NOW, OTHER)
        await store.flush()
        async with store.sessions() as session:
            rows = list(await session.scalars(select(CallRecord)))
        stored = " ".join(f"{r.caller} {r.caller_hash}" for r in rows)
        assert "17612345678" not in stored  # hashed and masked, never the number
        result = await forget(settings, store, "+49 176 1234 5678")  # spaced as a person types it
        assert result.summary() == {"calls": 3, "transcript_turns": 3, "events": 0, "recordings": 3}
        assert not any(p.exists() for p in mine)
        assert theirs.exists()
        assert await store.load_call("CAtheirs") is not None
        assert (await forget(settings, store, CALLER)).calls == 0
    finally:
        await store.aclose()


def test_cli_purge_and_forget_report_what_they_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    runner = CliRunner()
    env_file = str(tmp_path / "none.env")
    forgot = runner.invoke(main, ["--env-file", env_file, "forget", "--caller", CALLER])
    assert forgot.exit_code == 0, forgot.output
    assert "0 calls" in forgot.output
    assert CALLER not in forgot.output
    purged = runner.invoke(main, ["--env-file", env_file, "purge"])
    assert purged.exit_code == 0, purged.output
    assert "older than 30 days" in purged.output
    bad = runner.invoke(main, ["--env-file", env_file, "forget", "--caller", "nobody"])
    assert bad.exit_code == 2


async def test_a_whole_recorded_call_is_forgotten_by_the_callers_number(tmp_path: Path) -> None:
    async with running_bot(tmp_path, record_calls=True) as bot:
        console: Console = bot.ctx.extras[Console.EXTRAS_KEY]
        with console.hub.watch(None) as probe:
            async with place_call(bot.base_url, public_url=PUBLIC_URL, caller=CALLER) as call:
                await call.wait_for_audio(timeout_s=15)
                await call.play_out(timeout_s=15)
                session = bot.sessions[0]
                await call.send_silence(600)
            await call.wait_for(lambda: session.state is CallState.HANGUP, timeout_s=15)
            async with asyncio.timeout(15):  # the console has seen the end (its events travel batched)
                while (view := console.hub.live.get(session.call_sid)) is None or view.live:
                    await probe.next_batch(1)
        path = recording_path(tmp_path / "recordings", session.call_sid)
        assert path.is_file()
        result = await forget(bot.ctx.settings, console.store, CALLER, live=console.hub.live)
        assert result.calls == 1
        assert result.recordings == 1
        assert not path.exists()
        assert await console.store.load_call(session.call_sid) is None
        assert console.hub.live.get(session.call_sid) is None  # gone from the history list too
