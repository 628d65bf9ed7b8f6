"""State that every instance serving one number must share: stream tokens, live calls and who is alive.

One process keeps it in memory (``LocalFleet``). With ``REDIS_URL`` every instance keeps it in Redis
(``RedisFleet``), because Twilio's ``/voice`` request and the ``/media`` socket of one call may land on
different instances, and ``MAX_CONCURRENT_CALLS`` is a promise about the whole number, not one process.
Everything here runs once per call (issue, accept, register, unregister) or on a timer (the heartbeat):
per-frame work never touches Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from media.errors import ConfigError
from web.security import CallTokens

log = structlog.get_logger()

PREFIX = "voicebot:"
HEARTBEAT_S = 5.0
ALIVE_TTL_S = 3 * HEARTBEAT_S
"""An instance that has not beaten for this long is dead (``kill -9``, lost machine): its calls are lost."""


def _state_errors() -> tuple[type[Exception], ...]:
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return (OSError, TimeoutError)
    return (OSError, TimeoutError, RedisError)


STATE_ERRORS = _state_errors()
"""What an unreachable Redis raises: callers answer politely instead of failing the request."""


def new_instance_id() -> str:
    """Host name first: a recording is a file on that machine, so the record must name the machine."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class FleetCall:
    call_sid: str
    stream_sid: str
    instance: str
    started_at: float


class FleetState(Protocol):
    instance: str

    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    async def issue_token(self, call_sid: str) -> str: ...
    async def verify_token(self, call_sid: str, token: str | None) -> bool: ...
    async def pending_tokens(self) -> int: ...
    async def register(self, call: FleetCall) -> bool: ...
    async def unregister(self, call_sid: str) -> None: ...
    async def live_count(self) -> int: ...
    async def live_calls(self) -> list[FleetCall]: ...
    async def alive_instances(self) -> set[str]: ...


class LocalFleet:
    """One process: the tokens and live calls of this process are the whole fleet."""

    def __init__(self, tokens: CallTokens, instance: str | None = None) -> None:
        self.instance = instance or new_instance_id()
        self.tokens = tokens
        self._live: dict[str, FleetCall] = {}

    async def start(self) -> None:
        return

    async def aclose(self) -> None:
        return

    async def issue_token(self, call_sid: str) -> str:
        return self.tokens.issue(call_sid)

    async def verify_token(self, call_sid: str, token: str | None) -> bool:
        return self.tokens.verify(call_sid, token)

    async def pending_tokens(self) -> int:
        return self.tokens.outstanding

    async def register(self, call: FleetCall) -> bool:
        if call.call_sid in self._live:
            return False
        self._live[call.call_sid] = call
        return True

    async def unregister(self, call_sid: str) -> None:
        self._live.pop(call_sid, None)

    async def live_count(self) -> int:
        return len(self._live)

    async def live_calls(self) -> list[FleetCall]:
        return list(self._live.values())

    async def alive_instances(self) -> set[str]:
        return {self.instance}


# Registers a call only if its CallSid is not live anywhere; returns 1 when registered.
_REGISTER = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


class RedisFleet:
    """Keys (all under ``voicebot:``): ``token:<sid>`` (string, TTL), ``pending`` (zset sid → expiry),
    ``live`` (hash sid → JSON), ``calls:<instance>`` (set of sids), ``alive:<instance>`` (heartbeat, TTL)."""

    def __init__(
        self,
        url: str,
        *,
        instance: str | None = None,
        token_ttl_s: float = 120.0,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError:
            missing = "REDIS_URL is set but the redis client is missing: pip install 'voicebot[redis]'"
            raise ConfigError(missing) from None
        self.instance = instance or new_instance_id()
        self._redis: Any = Redis.from_url(url)
        self._ttl = token_ttl_s
        self._max_pending = max_pending
        self._clock = clock
        self._beat: asyncio.Task[None] | None = None
        self._register: Any = self._redis.register_script(_REGISTER)
        self.operations = 0
        """Redis round trips made, for the benchmark's operations-per-call figure."""

    async def start(self) -> None:
        await self._beat_once()
        await self._forget_dead()
        self._beat = asyncio.create_task(self._beat_forever(), name="fleet-heartbeat")
        log.info("fleet_joined", instance=self.instance, backend="redis")

    async def aclose(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
            self._beat = None
        with contextlib.suppress(Exception):  # a clean leave: no one need wait for the TTL
            await self._redis.delete(self._key("alive", self.instance))
        await self._redis.aclose()

    # --- tokens ----------------------------------------------------------------------------------------
    async def issue_token(self, call_sid: str) -> str:
        token = secrets.token_urlsafe(18)
        now = self._clock()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("token", call_sid), token, px=int(self._ttl * 1000))
            pipe.zremrangebyscore(self._key("pending"), "-inf", now)
            pipe.zadd(self._key("pending"), {call_sid: now + self._ttl})
            pipe.zcard(self._key("pending"))
            *_, pending = await pipe.execute()
        self.operations += 1
        if pending > self._max_pending:  # unsigned floods evict their own oldest tokens, not capacity
            evicted = await self._redis.zpopmin(self._key("pending"), pending - self._max_pending)
            self.operations += 1
            for sid, _ in evicted:
                await self._redis.delete(self._key("token", sid.decode()))
        return token

    async def verify_token(self, call_sid: str, token: str | None) -> bool:
        """True once for the issued token, on any instance; any attempt uses it up (GETDEL is atomic)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.getdel(self._key("token", call_sid))
            pipe.zrem(self._key("pending"), call_sid)
            issued, _ = await pipe.execute()
        self.operations += 1
        if issued is None or not token:
            return False
        return hmac.compare_digest(issued, token.encode())

    async def pending_tokens(self) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self._key("pending"), "-inf", self._clock())
            pipe.zcard(self._key("pending"))
            _, count = await pipe.execute()
        self.operations += 1
        return int(count)

    # --- live calls ------------------------------------------------------------------------------------
    async def register(self, call: FleetCall) -> bool:
        value = json.dumps(
            {"stream_sid": call.stream_sid, "instance": call.instance, "started_at": call.started_at}
        )
        keys = [self._key("live"), self._key("calls", call.instance)]
        done = await self._register(keys=keys, args=[call.call_sid, value])
        self.operations += 1
        return bool(done)

    async def unregister(self, call_sid: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._key("live"), call_sid)
            pipe.srem(self._key("calls", self.instance), call_sid)
            await pipe.execute()
        self.operations += 1

    async def live_count(self) -> int:
        self.operations += 1
        return int(await self._redis.hlen(self._key("live")))

    async def live_calls(self) -> list[FleetCall]:
        raw = await self._redis.hgetall(self._key("live"))
        self.operations += 1
        calls = []
        for sid, value in raw.items():
            data = json.loads(value)
            calls.append(FleetCall(sid.decode(), data["stream_sid"], data["instance"], data["started_at"]))
        return calls

    async def alive_instances(self) -> set[str]:
        prefix = self._key("alive", "")
        found = {key.decode()[len(prefix) :] async for key in self._redis.scan_iter(match=prefix + "*")}
        self.operations += 1
        return found

    # --- liveness --------------------------------------------------------------------------------------
    async def _beat_once(self) -> None:
        await self._redis.set(self._key("alive", self.instance), "1", px=int(ALIVE_TTL_S * 1000))

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._beat_once()
                await self._forget_dead()  # an instance killed meanwhile stops holding capacity
            except Exception:  # Redis away for a moment: calls go on, the next beat retries
                log.warning("fleet_heartbeat_failed", exc_info=True)

    async def _forget_dead(self) -> None:
        """Live-call entries of instances that stopped beating (killed) no longer count against the limit."""
        alive = await self.alive_instances()
        dead: list[str] = []
        for call in await self.live_calls():
            if call.instance not in alive:
                dead.append(call.call_sid)
        if dead:
            await self._redis.hdel(self._key("live"), *dead)
            log.warning("fleet_dead_calls_forgotten", calls=len(dead))

    @staticmethod
    def _key(*parts: str) -> str:
        return PREFIX + ":".join(parts)


def build_fleet(redis_url: str, tokens: CallTokens) -> FleetState:
    if redis_url:
        return RedisFleet(redis_url, max_pending=tokens.max_outstanding)
    return LocalFleet(tokens)
