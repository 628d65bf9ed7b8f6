"""Client rotation and the one-write transport, over real sockets to the provider fakes."""

from __future__ import annotations

import httpx2
import pytest

from fakes.server import FakeEndpoints
from media.clients import (
    CALLS_PER_CLIENT,
    CLIENT_SLOT,
    ClientSlots,
    OneWriteTransport,
    Rotation,
    clients_for,
    rotation,
)


def test_rotation_takes_clients_in_turn() -> None:
    r = Rotation(["a", "b", "c"])
    assert [r.next() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert len(r) == 3
    assert rotation("x").clients == ("x",)
    assert rotation(r) is r
    with pytest.raises(ValueError, match="at least one client"):
        Rotation([])


def test_a_call_keeps_its_slot_s_client_for_every_request() -> None:
    """At low load each request of a call must find the connection its previous request left warm."""
    r = Rotation(["a", "b", "c"])
    token = CLIENT_SLOT.set(4)
    try:
        assert [r.next() for _ in range(4)] == ["b"] * 4
    finally:
        CLIENT_SLOT.reset(token)
    assert r.next() == "a"  # outside a call: in turns again


def test_slots_fill_the_first_client_before_the_next() -> None:
    slots = ClientSlots(3, calls_per_client=2)
    assert [slots.take() for _ in range(5)] == [0, 0, 1, 1, 2]
    slots.release(0)
    assert slots.peek() == 0  # a call ended: the next one shares the warmest pool again
    assert [slots.take() for _ in range(3)] == [0, 2, 0]  # all full: the least busy, lowest first
    assert ClientSlots(0).take() == 0


def test_only_a_client_idle_long_enough_is_warmed() -> None:
    now = [100.0]
    r = Rotation(["a", "b"], clock=lambda: now[0])
    token = CLIENT_SLOT.set(1)
    try:
        assert r.to_warm(10.0) == "b"  # never used
        assert r.to_warm(10.0) is None  # a warm-up just went: a second ringing call does not repeat it
        now[0] += 9.9
        r.next()
        now[0] += 9.9
        assert r.to_warm(10.0) is None  # used 9.9 s ago: its connection is still pooled
        now[0] += 0.2
        assert r.to_warm(10.0) == "b"
    finally:
        CLIENT_SLOT.reset(token)


def test_clients_grow_with_the_calls_a_process_takes() -> None:
    assert clients_for(1) == 1
    assert clients_for(CALLS_PER_CLIENT) == 1
    assert clients_for(CALLS_PER_CLIENT + 1) == 2
    assert clients_for(200) == 200 // CALLS_PER_CLIENT


async def test_a_multipart_upload_leaves_as_one_piece(fake: FakeEndpoints) -> None:
    pieces: list[int] = []

    class Counting(OneWriteTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            response = await super().handle_async_request(request)
            pieces.extend([len(chunk) async for chunk in request.stream])  # what the connection was given
            return response

    async with httpx2.AsyncClient(transport=Counting(), base_url=fake.openai_base_url) as client:
        response = await client.post(
            "/audio/transcriptions",
            headers={"Authorization": "Bearer sk-test-openai"},
            data={"model": "whisper-1", "language": "de", "response_format": "json", "prompt": "Zählerstand"},
            files={"file": ("utterance.wav", b"RIFF" + bytes(3200), "audio/wav")},
        )
    assert response.status_code == 200, response.text
    assert len(pieces) == 1  # httpx alone would hand over some twenty fields and separators
    assert pieces[0] > 3200
