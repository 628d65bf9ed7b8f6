"""Several instances serving one number, sharing a real Redis (Debian's redis-server, started by pytest).

Tokens issued by one instance are accepted once by any; the live-call limit counts the whole fleet; a
console on one instance sees another's call live; an instance that was killed does not hold capacity.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from console.hub import EventHub
from simulator.call import TwiML, local_ws_url, post_webhook
from simulator.twilio import TwilioSimulator
from tests.support.bot import PUBLIC_URL, running_bot
from tests.support.servers import RedisServer, redis_server
from web.calls import TwilioEdge
from web.console_routes import Console
from web.fleet import FleetCall, RedisFleet
from web.twilio_routes import APOLOGY


@pytest.fixture
async def redis_url(redis: RedisServer) -> str:
    """The session's server, emptied for each test: the tests share it, not its keys."""
    client = Redis.from_url(redis.url)
    await client.flushdb()
    await client.aclose()
    return redis.url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_token_issued_by_one_instance_is_accepted_once_by_any(redis_url: str) -> None:
    a, b = RedisFleet(redis_url, instance="a"), RedisFleet(redis_url, instance="b")
    await a.start()
    await b.start()
    try:
        token = await a.issue_token("CA1")
        assert await a.pending_tokens() == 1
        assert not await b.verify_token("CA1", "forged")  # a wrong guess uses the token up too
        token = await a.issue_token("CA1")  # Twilio retried the webhook
        assert await b.verify_token("CA1", token)
        assert not await a.verify_token("CA1", token)  # replayed on another instance
        assert await b.pending_tokens() == 0
    finally:
        await a.aclose()
        await b.aclose()


async def test_tokens_expire_and_a_flood_evicts_its_own_oldest(redis_url: str) -> None:
    clock = Clock()
    fleet = RedisFleet(redis_url, instance="a", token_ttl_s=120, max_pending=3, clock=clock)
    await fleet.start()
    try:
        first = await fleet.issue_token("CA1")
        for sid in ("CA2", "CA3", "CA4"):
            await fleet.issue_token(sid)
        assert await fleet.pending_tokens() == 3
        assert not await fleet.verify_token("CA1", first)  # evicted, not capacity
        client = Redis.from_url(redis_url)
        ttl_ms = await client.pttl("voicebot:token:CA2")
        await client.aclose()
        assert 0 < ttl_ms <= 120_000  # Redis drops the token itself
        clock.now += 121
        assert await fleet.pending_tokens() == 0  # expired ones no longer hold capacity
    finally:
        await fleet.aclose()


async def test_live_calls_count_across_instances_and_a_killed_ones_are_forgotten(redis_url: str) -> None:
    a, b = RedisFleet(redis_url, instance="a"), RedisFleet(redis_url, instance="b")
    await a.start()
    await b.start()
    assert await a.register(FleetCall("CA1", "MZ1", "a", 1.0))
    assert await b.register(FleetCall("CA2", "MZ2", "b", 2.0))
    assert not await b.register(FleetCall("CA1", "MZ9", "b", 3.0))  # one stream per call, fleet-wide
    assert await a.live_count() == await b.live_count() == 2
    assert await a.alive_instances() >= {"a", "b"}
    # b is killed: it never unregisters; its heartbeat key is what expires (removed here, as its TTL would)
    assert b._beat is not None
    b._beat.cancel()
    client = Redis.from_url(redis_url)
    await client.delete("voicebot:alive:b")
    await client.aclose()
    c = RedisFleet(redis_url, instance="c")
    await c.start()  # any instance starting next forgets the dead one's calls
    try:
        assert [call.call_sid for call in await c.live_calls()] == ["CA1"]
        await a.unregister("CA1")
        assert await c.live_count() == 0
    finally:
        await a.aclose()
        await c.aclose()
        await b.aclose()


async def _voice(base_url: str, call_sid: str) -> TwiML:
    form = {"CallSid": call_sid, "From": "+4917612345678", "To": "+4930123456", "CallStatus": "ringing"}
    resp = await post_webhook(base_url, "/voice", form, public_url=PUBLIC_URL, auth_token=None)
    assert resp.status_code == 200
    return TwiML.parse(resp.text)


async def test_voice_on_one_instance_media_on_another_and_every_console_sees_it(
    redis_url: str, tmp_path: Path
) -> None:
    async with (
        running_bot(tmp_path / "a", redis_url=redis_url, max_concurrent_calls=1) as a,
        running_bot(tmp_path / "b", redis_url=redis_url, max_concurrent_calls=1) as b,
    ):
        hub_a: EventHub = a.ctx.extras[Console.EXTRAS_KEY].hub  # type: ignore[attr-defined]
        twiml = await _voice(a.base_url, "CAfleet1")
        assert twiml.stream_url is not None
        with hub_a.watch("CAfleet1") as watcher:
            sim = TwilioSimulator(
                local_ws_url(b.base_url, twiml.stream_url),
                call_sid="CAfleet1",
                custom_parameters=twiml.parameters,
            )
            await sim.connect()
            await sim.start()
            await sim.wait_for_audio(800, timeout_s=10)  # B greets the caller whose /voice A answered
            assert [s.call_sid for s in b.sessions] == ["CAfleet1"]
            assert not a.sessions
            seen = await watcher.next_batch(wait_s=10)
            assert any(e.kind == "call_started" for e in seen)  # A's console, B's call, live
            assert hub_a.live.get("CAfleet1") is not None
            # The limit is the fleet's: with B's call live, A refuses the next one politely.
            refused = await _voice(a.base_url, "CAfleet2")
            assert refused.stream_url is None
            # The token was used up on B: replaying it on A is refused.
            replay = TwilioSimulator(
                local_ws_url(a.base_url, twiml.stream_url),
                call_sid="CAfleet1",
                custom_parameters=twiml.parameters,
            )
            await replay.connect()
            await replay.start()
            await replay.wait_closed(timeout_s=5)
            await sim.hang_up()
        edge_b = TwilioEdge.of(b.ctx)
        await sim.wait_closed(timeout_s=5)
        assert await edge_b.fleet.live_count() == 0


async def test_a_call_held_by_another_instance_counts_against_the_limit(
    redis_url: str, tmp_path: Path
) -> None:
    async with running_bot(tmp_path, redis_url=redis_url, max_concurrent_calls=1) as bot:
        edge = TwilioEdge.of(bot.ctx)
        await edge.fleet.register(FleetCall("CAother", "MZ", "another-instance", 1.0))
        async with httpx.AsyncClient() as client:
            form = {"CallSid": "CAx", "From": "+4917612345678", "To": "+4930123456"}
            resp = await client.post(bot.base_url + "/voice", data=form)
        assert APOLOGY.split(".")[0] in resp.text


async def test_with_redis_gone_a_new_call_hears_the_apology_not_an_error(tmp_path: Path) -> None:
    with redis_server() as own:  # its own server, so stopping it leaves the session's alone
        async with running_bot(tmp_path, redis_url=own.url) as bot:
            own.stop()
            async with httpx.AsyncClient() as client:
                form = {"CallSid": "CAx", "From": "+4917612345678", "To": "+4930123456"}
                resp = await client.post(bot.base_url + "/voice", data=form)
            assert resp.status_code == 200
            assert APOLOGY.split(".")[0] in resp.text
