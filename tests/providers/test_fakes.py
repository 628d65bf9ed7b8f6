"""The fakes' wire format, checked with a plain HTTP client where the SDKs would hide it."""

from __future__ import annotations

import json

import httpx

from fakes.behaviour import FakeBehaviour, FakeReply, FakeToolCall
from fakes.server import FakeEndpoints, run_fake_providers
from tests.providers.conftest import ELEVENLABS_KEY, OPENAI_KEY


async def test_chat_is_sse_ending_in_done_with_tool_calls(fake: FakeEndpoints) -> None:
    fake.behaviour.replies.append(FakeReply("Gern.", (FakeToolCall("end_call", {"grund": "fertig"}),)))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.openai_base_url}/chat/completions",
            headers={"Authorization": f"Bearer {OPENAI_KEY}"},
            json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    arguments = "".join(
        tc["function"].get("arguments", "")
        for c in chunks
        for tc in c["choices"][0]["delta"].get("tool_calls", [])
    )
    assert json.loads(arguments) == {"grund": "fertig"}


async def test_openai_fake_wants_a_bearer_token(fake: FakeEndpoints) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.openai_base_url}/chat/completions", json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_elevenlabs_fake_wants_its_key_and_streams_100ms_chunks(fake: FakeEndpoints) -> None:
    url = f"{fake.elevenlabs_base_url}/v1/text-to-speech/voice-1/stream?output_format=ulaw_8000"
    async with httpx.AsyncClient() as http:
        denied = await http.post(url, json={"text": "Hallo"})
        assert denied.status_code == 401
        assert denied.json()["detail"]["status"] == "invalid_api_key"
        sizes = []
        async with http.stream(
            "POST", url, headers={"xi-api-key": ELEVENLABS_KEY}, json={"text": "Guten Tag"}
        ) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_raw():
                sizes.append(len(chunk))
    assert sum(sizes) >= 800


async def test_elevenlabs_fake_speaks_real_german_with_espeak() -> None:
    async with run_fake_providers(FakeBehaviour(), speech=True) as fake:
        url = f"{fake.elevenlabs_base_url}/v1/text-to-speech/v/stream?output_format=pcm_16000"
        async with httpx.AsyncClient() as http:
            response = await http.post(url, headers={"xi-api-key": "any"}, json={"text": "Guten Tag"})
    assert response.status_code == 200
    assert len(response.content) > 16000 * 2 * 0.3  # some 0.3 s or more of 16 kHz PCM16


async def test_transcription_as_plain_text_and_as_scripted(fake: FakeEndpoints) -> None:
    fake.behaviour.transcripts.append("Erste Antwort.")
    files = {"file": ("a.wav", b"RIFF....", "audio/wav")}
    data = {"model": "whisper-1", "response_format": "text"}
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    async with httpx.AsyncClient() as http:
        first = await http.post(
            f"{fake.openai_base_url}/audio/transcriptions", files=files, data=data, headers=headers
        )
        second = await http.post(
            f"{fake.openai_base_url}/audio/transcriptions", files=files, data={"model": "x"}, headers=headers
        )
    assert first.text == "Erste Antwort.\n"
    assert second.json()["text"] == fake.behaviour.default_transcript
    assert fake.behaviour.requests_to("stt")[0].body["file_bytes"] == 8
