"""The stream-input fake itself, spoken to with a raw ``websockets`` client: the protocol rules the adapter
does not exercise (the key in the first message, generation by the chunk schedule, refused formats)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fakes.server import FakeEndpoints
from tests.providers.conftest import ELEVENLABS_KEY

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def _socket(
    fake: FakeEndpoints, *, fmt: str = "ulaw_8000", header_key: str | None = None
) -> AsyncIterator[ClientConnection]:
    base = fake.elevenlabs_base_url.replace("http://", "ws://")
    url = f"{base}/v1/text-to-speech/v/stream-input?model_id=eleven_flash_v2_5&output_format={fmt}"
    headers = {"xi-api-key": header_key} if header_key is not None else {}
    async with connect(url, additional_headers=headers) as socket:
        yield socket


async def _send(socket: ClientConnection, **message: Any) -> None:
    await socket.send(json.dumps(message))


async def _next(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await socket.recv())
    return message


async def test_the_key_may_come_in_the_first_message(fake: FakeEndpoints) -> None:
    async with _socket(fake) as socket:
        await _send(socket, text=" ", **{"xi-api-key": ELEVENLABS_KEY})
        await _send(socket, text="Guten Tag. ")
        await _send(socket, text="")
        first = await _next(socket)
        assert base64.b64decode(first["audio"])
        assert first["alignment"]["chars"][:5] == list("Guten")
        while not (await _next(socket)).get("isFinal"):
            pass
    assert "xi-api-key" not in json.dumps(fake.behaviour.requests_to("tts")[0].body["messages"])


async def test_a_wrong_key_in_the_first_message_is_an_error_then_a_close(fake: FakeEndpoints) -> None:
    async with _socket(fake) as socket:
        await _send(socket, text=" ", **{"xi-api-key": "xi-wrong"})
        assert await _next(socket) == {"message": "Invalid API key", "error": "invalid_api_key", "code": 1008}
        with pytest.raises(ConnectionClosed) as info:
            await socket.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008


async def test_text_past_the_chunk_schedule_is_rendered_without_a_flush(fake: FakeEndpoints) -> None:
    async with _socket(fake, header_key=ELEVENLABS_KEY) as socket:
        await _send(socket, text=" ", generation_config={"chunk_length_schedule": [50]})
        await _send(socket, text="Kurz. ")  # below the schedule: held
        await _send(socket, text="Und jetzt genug Text, dass die Stimme ohne Flush anfängt. ")
        first = await _next(socket)  # no flush, no end: the schedule started it
        assert first["alignment"]["chars"][:5] == list("Kurz.")
        await _send(socket, text="")
        while not (await _next(socket)).get("isFinal"):
            pass


async def test_a_container_format_is_refused_in_band(fake: FakeEndpoints) -> None:
    async with _socket(fake, fmt="mp3_44100_128", header_key=ELEVENLABS_KEY) as socket:
        error = await _next(socket)
        assert error["error"] == "invalid_output_format"
        with pytest.raises(ConnectionClosed):
            await socket.recv()


async def test_the_first_message_must_be_one_space(fake: FakeEndpoints) -> None:
    async with _socket(fake, header_key=ELEVENLABS_KEY) as socket:
        await _send(socket, text="Hallo")
        assert (await _next(socket))["error"] == "invalid_request"
