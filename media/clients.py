"""Several SDK clients of one provider, taken in turn, so no connection pool grows past a few dozen.

httpx's pool (httpcore) walks every connection it holds on each request and on each response's release,
and asks each idle one whether its socket has become readable: a system call per idle connection. With
one pool for two hundred calls that walk cost more than the requests themselves (about 8 % of the event
loop's core in the benchmark). Shrinking the keep-alive count instead would tear connections down and open
new ones, which against the real APIs means a TLS handshake in the middle of a turn. A rotation of small
pools keeps every connection warm and every walk short.

A call keeps one client of each provider for its whole length (its *slot*, carried in a context variable),
and slots fill the first client up to ``CALLS_PER_CLIENT`` calls before the next. Handing out clients in
plain turns meant that at low load every request of a call landed in a pool it had not used for minutes,
whose connection had long expired: a fresh TCP and TLS handshake in every turn, invisible on loopback and
around a tenth of a second against the real APIs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Final, Generic, TypeVar

import httpx2

C = TypeVar("C")

CALLS_PER_CLIENT: Final = 25
"""Calls served by one SDK client (one connection pool) of each provider."""


KEEPALIVE_S: Final = 30.0
"""How long an idle connection stays pooled. httpx's default of 5 s is shorter than a caller's turn plus
the bot's answer, so the next request of the same call found its connection gone."""

WARM_AFTER_IDLE_S: Final = 10.0
"""A client used more recently than this still has a pooled connection: warming it would only add a
request."""

CLIENT_SLOT: ContextVar[int | None] = ContextVar("voicebot_client_slot", default=None)
"""The calling call's slot; unset (outside a call), clients are handed out in turns."""


def clients_for(max_calls: int) -> int:
    """How many clients of one provider a process taking ``max_calls`` calls at once gets."""
    return max(1, -(-max_calls // CALLS_PER_CLIENT))


class ClientSlots:
    """Which client of every provider each call uses: the first client with room, else the least busy."""

    def __init__(self, count: int, *, calls_per_client: int = CALLS_PER_CLIENT) -> None:
        self._calls = [0] * max(1, count)
        self._room = calls_per_client

    def peek(self) -> int:
        """The slot the next call will get."""
        for i, calls in enumerate(self._calls):
            if calls < self._room:
                return i
        return min(range(len(self._calls)), key=self._calls.__getitem__)

    def take(self) -> int:
        slot = self.peek()
        self._calls[slot] += 1
        return slot

    def release(self, slot: int) -> None:
        self._calls[slot] = max(0, self._calls[slot] - 1)


class Rotation(Generic[C]):
    """The clients of one provider; ``rotation(client)`` makes a single client a rotation of one."""

    def __init__(self, clients: Sequence[C], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients: tuple[C, ...] = tuple(clients)
        if not self.clients:
            raise ValueError("a rotation needs at least one client")
        self._turn = itertools.cycle(range(len(self.clients)))
        self._clock = clock
        self._last_used = [-float("inf")] * len(self.clients)

    def _index(self) -> int:
        slot = CLIENT_SLOT.get()
        return next(self._turn) if slot is None else slot % len(self.clients)

    def next(self) -> C:
        """The calling call's client (in turns outside a call)."""
        i = self._index()
        self._last_used[i] = self._clock()
        return self.clients[i]

    def to_warm(self, idle_s: float = WARM_AFTER_IDLE_S) -> C | None:
        """The calling call's client if it has been idle for ``idle_s``, so its pool may hold no connection;
        counted as used, so a second call ringing at once does not warm it again."""
        i = self._index()
        now = self._clock()
        if now - self._last_used[i] < idle_s:
            return None
        self._last_used[i] = now
        return self.clients[i]

    def __len__(self) -> int:
        return len(self.clients)


def rotation(client: C | Rotation[C]) -> Rotation[C]:
    return client if isinstance(client, Rotation) else Rotation([client])


class OneWriteTransport(httpx2.AsyncHTTPTransport):
    """Sends each request body in one piece.

    httpx streams a multipart upload (the STT request) field by field, some twenty socket writes, and each
    write yields to the event loop once. With two hundred calls every yield waits behind the audio of all
    the others: that added a third of a second to transcripts. Reading the body first makes it one write;
    a JSON body already is one piece, so nothing changes for the other requests.
    """

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        return await super().handle_async_request(request)
