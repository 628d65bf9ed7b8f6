"""Several SDK clients of one provider, taken in turn, so no connection pool grows past a few dozen.

httpx's pool (httpcore) walks every connection it holds on each request and on each response's release,
and asks each idle one whether its socket has become readable: a system call per idle connection. With
one pool for two hundred calls that walk cost more than the requests themselves (about 8 % of the event
loop's core in the benchmark). Shrinking the keep-alive count instead would tear connections down and open
new ones, which against the real APIs means a TLS handshake in the middle of a turn. A rotation of small
pools keeps every connection warm and every walk short.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final, Generic, TypeVar

import httpx2

C = TypeVar("C")

CALLS_PER_CLIENT: Final = 25
"""Calls served by one SDK client (one connection pool) of each provider."""


def clients_for(max_calls: int) -> int:
    """How many clients of one provider a process taking ``max_calls`` calls at once gets."""
    return max(1, -(-max_calls // CALLS_PER_CLIENT))


class Rotation(Generic[C]):
    """Round-robin over clients; ``rotation(client)`` makes a single client a rotation of one."""

    def __init__(self, clients: Sequence[C]) -> None:
        self.clients: tuple[C, ...] = tuple(clients)
        if not self.clients:
            raise ValueError("a rotation needs at least one client")
        self._turn = itertools.cycle(self.clients)

    def next(self) -> C:
        return next(self._turn)

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
