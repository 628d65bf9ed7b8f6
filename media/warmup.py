"""Opens a pooled connection to a provider while the phone rings, so the caller's first turn does not wait
for TCP and TLS handshakes.

``/voice`` answers Twilio, and the caller's first words come seconds later (the greeting plays first):
time for one cheap authenticated request per provider. Its answer does not matter, only the connection it
leaves in the pool of the client the call will use (see ``media.clients``). The request is one that costs
nothing and changes nothing: the model's own description. A failure is logged and forgotten; the turn will
simply connect as it would have anyway.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from media.clients import CLIENT_SLOT, ClientSlots, Rotation

log = structlog.get_logger()

WARM_TIMEOUT_S: Final = 5.0
"""Longer than any handshake; a provider this slow will not be faster for the turn either."""


async def warm_openai(clients: Rotation[AsyncOpenAI], model: str) -> bool:
    """``GET /v1/models/{model}`` on the call's client if its pool may be cold; True if a request went."""
    client = clients.to_warm()
    if client is None:
        return False
    try:
        await client.models.retrieve(model, timeout=WARM_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure only means the turn connects itself
        log.info("provider_warm_failed", provider="openai", error=type(exc).__name__)
    return True


async def warm_elevenlabs(clients: Rotation[AsyncElevenLabs]) -> bool:
    """``GET /v1/models`` on the call's client if its pool may be cold; True if a request went."""
    client = clients.to_warm()
    if client is None:
        return False
    try:
        await client.models.list(request_options={"timeout_in_seconds": int(WARM_TIMEOUT_S)})
    except Exception as exc:  # noqa: BLE001 - any failure only means the turn connects itself
        log.info("provider_warm_failed", provider="elevenlabs", error=type(exc).__name__)
    return True


class ProviderWarmup:
    """The process's client slots and one warm-up per pooled provider, run when a call rings."""

    def __init__(self, slots: ClientSlots) -> None:
        self.slots = slots
        self._warmers: list[Callable[[], Awaitable[bool]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def add(self, warm: Callable[[], Awaitable[bool]]) -> None:
        self._warmers.append(warm)

    def ring(self) -> asyncio.Task[None] | None:
        """At ``/voice``: opens, in the background, the connections the ringing call's first turn will use.

        The task runs in the slot the call is about to take (``ClientSlots.peek``), so it warms that
        client's pool. Returns the task (tests await it), or None when nothing is pooled.
        """
        if not self._warmers:
            return None
        context = contextvars.copy_context()
        context.run(CLIENT_SLOT.set, self.slots.peek())
        task = asyncio.get_running_loop().create_task(self._warm(), name="provider_warm", context=context)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def enter_call(self) -> int:
        """A new call takes its slot, set in the current context: every task the call starts from here on
        uses that slot's clients. ``leave_call`` gives it back."""
        slot = self.slots.take()
        CLIENT_SLOT.set(slot)
        return slot

    def leave_call(self, slot: int) -> None:
        self.slots.release(slot)

    async def _warm(self) -> None:
        await asyncio.gather(*(warm() for warm in self._warmers))

    async def aclose(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
