"""Client rotation and the one-write transport, over real sockets to the provider fakes."""

from __future__ import annotations

import httpx2
import pytest

from fakes.server import FakeEndpoints
from media.clients import CALLS_PER_CLIENT, OneWriteTransport, Rotation, clients_for, rotation


def test_rotation_takes_clients_in_turn() -> None:
    r = Rotation(["a", "b", "c"])
    assert [r.next() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert len(r) == 3
    assert rotation("x").clients == ("x",)
    assert rotation(r) is r
    with pytest.raises(ValueError, match="at least one client"):
        Rotation([])


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
