"""``voicebot serve --workers N``: N processes on one port, sharing state through Redis; SIGTERM drains."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from fakes.server import FakeEndpoints
from simulator.call import place_call
from tests.fleet.conftest import AUTH_TOKEN, ask_and_hear_answer, fleet_env
from tests.support.processes import BotProcess
from tests.support.servers import PostgresServer, RedisServer, create_database, free_port

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]


def test_more_than_one_worker_needs_redis(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from web.cli import main; main()", "--env-file", "/nonexistent"]
    result = subprocess.run(
        [*command, "serve", "--workers", "2"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd()), "DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers 2 needs REDIS_URL" in result.stderr


async def test_two_workers_serve_one_port_and_drain_a_call_on_sigterm(
    fakes: FakeEndpoints, redis: RedisServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    client = Redis.from_url(redis.url)
    await client.flushdb()
    await client.aclose()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    database = create_database(postgres, f"workers_{port}")
    bot = BotProcess(
        "workers", fleet_env(fakes, public_url, redis.url, database, tmp_path), workers=2, port=port
    )
    try:
        await bot.start()
        await bot.wait_ready()  # both workers started their store
        assert len(bot.logged("fleet_joined")) == 2
        async with place_call(public_url, public_url=public_url, auth_token=AUTH_TOKEN) as call:
            await call.wait_for_audio(timeout_s=15)
            await call.play_out()
            await ask_and_hear_answer(call)
            bot.signal(signal.SIGTERM)  # the parent forwards it to both workers
            await bot.wait_log("drain_started", count=2)
            await ask_and_hear_answer(call)  # the worker holding the call keeps serving it
        assert await bot.wait_exit() == 0
        assert len(bot.logged("drain_done")) == 2
    finally:
        await bot.stop()
