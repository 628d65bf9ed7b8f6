"""Two ``voicebot serve`` processes behind Debian's nginx, sharing Debian's redis-server and PostgreSQL.

nginx sends ``/voice`` and the console to instance A and ``/media`` to instance B, as a round-robin proxy
may: the call must still complete, signature-checked against ``PUBLIC_URL`` (the proxy's address), and A's
console must show B's call live. Draining A (SIGTERM) mid-call leaves the call running to its end and A
exits 0. A ``kill -9`` of B leaves its call open in the store until the next instance to start marks it lost.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from console.records import CallRecord
from fakes.server import FakeEndpoints
from simulator.call import place_call
from tests.console.conftest import log_in_async
from tests.fleet.conftest import AUTH_TOKEN, ask_and_hear_answer, fleet_env
from tests.support.processes import BotProcess
from tests.support.servers import PostgresServer, RedisServer, create_database, free_port, nginx_proxy

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(180)]


async def sse_mentions(console: httpx.AsyncClient, needle: str) -> None:
    async with console.stream("GET", "/console/events", headers={"accept": "text/event-stream"}) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if needle in line:
                return


async def test_a_call_across_two_instances_behind_nginx(
    fakes: FakeEndpoints, redis: RedisServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    client = Redis.from_url(redis.url)
    await client.flushdb()
    database = create_database(postgres, f"fleet_{uuid.uuid4().hex[:10]}")
    a_port, b_port = free_port(), free_port()
    routes = {"/voice": [a_port], "/status": [a_port], "/console": [a_port], "/media": [b_port]}
    with nginx_proxy(routes) as proxy_port:
        public_url = f"http://127.0.0.1:{proxy_port}"
        env = {k: fleet_env(fakes, public_url, redis.url, database, tmp_path / k) for k in ("a", "b")}
        a, b = BotProcess("a", env["a"], port=a_port), BotProcess("b", env["b"], port=b_port)
        restarted = BotProcess("a2", env["a"], port=free_port())
        try:
            await a.start()
            await b.start()
            await asyncio.gather(a.wait_ready(), b.wait_ready())
            [b_joined] = b.logged("fleet_joined")
            sid = "CA" + uuid.uuid4().hex
            async with httpx.AsyncClient(base_url=public_url, timeout=30) as console:
                await log_in_async(console)
                # A's console list, live over SSE (through nginx), must show the call B is holding.
                on_console = asyncio.create_task(asyncio.wait_for(sse_mentions(console, sid), 30))
                async with place_call(
                    public_url, public_url=public_url, auth_token=AUTH_TOKEN, call_sid=sid
                ) as call:
                    await call.wait_for_audio(timeout_s=15)
                    await call.play_out()
                    await a.wait_log("call_incoming", call_sid=sid)
                    await b.wait_log("stream_started", call_sid=sid)
                    assert not a.logged("stream_started")
                    await on_console
                    await ask_and_hear_answer(call)
                    a.signal(signal.SIGTERM)  # drain A mid-call: its /voice answered this call
                    assert await a.wait_exit() == 0
                    assert a.logged("drain_done")
                    await ask_and_hear_answer(call)  # the call goes on to its end
                first = call.call_sid
                await call.wait_closed()
            await b.wait_log("call_record_closed", call_sid=first)
            # A second call, straight to B (A is gone), and B is killed mid-call.
            async with place_call(b.base_url, public_url=public_url, auth_token=AUTH_TOKEN) as lost_call:
                await lost_call.wait_for_audio(timeout_s=15)
                await b.wait_log("call_record_opened", call_sid=lost_call.call_sid)
                b.signal(signal.SIGKILL)
                await b.wait_exit()
                await lost_call.wait_closed()
            # B's heartbeat expires after a few seconds; removing it is what the expiry does.
            await client.delete(f"voicebot:alive:{b_joined['instance']}")
            await restarted.start()
            await restarted.wait_ready()
            await restarted.wait_log("calls_marked_lost")
            engine = create_async_engine(database)
            async with engine.connect() as conn:
                rows = {r.call_sid: r for r in (await conn.execute(select(CallRecord))).all()}
            await engine.dispose()
            assert rows[first].end_reason not in ("", "lost")
            assert rows[first].instance == b_joined["instance"]  # its recording would be on B's machine
            assert rows[lost_call.call_sid].end_reason == "lost"
            assert await client.hlen("voicebot:live") == 0
        finally:
            for proc in (a, b, restarted):
                await proc.stop()
            await client.aclose()
