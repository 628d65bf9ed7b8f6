"""Choosing engines from settings, and a whole turn through ``build_providers`` against the fakes."""

from __future__ import annotations

import asyncio
import importlib.util
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dialogue.llm import Message, TextDelta, ToolSpec
from dialogue.llm_openai import OpenAILanguageModel
from dialogue.llm_scripted import ScriptedLanguageModel
from fakes.behaviour import Fault
from fakes.server import FakeEndpoints
from media.clients import CALLS_PER_CLIENT, clients_for
from media.errors import ConfigError, ProviderError
from media.espeak import synthesize_pcm16
from media.speech import Utterance
from media.stt_openai import OpenAISpeechToText
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_espeak import EspeakTextToSpeech
from tests.providers.conftest import ELEVENLABS_KEY, OPENAI_KEY
from web.providers import build_providers
from web.settings import Settings

POOLING_BUDGET_S = 30.0
"""Well inside the test timeout (60 s), far above any first byte of a loaded machine."""


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "openai_api_key": "",
        "elevenlabs_api_key": "",
        "openai_base_url": "",
        "elevenlabs_base_url": "",
        "data_dir": tmp_path,
        "business_profile": None,
    }
    return Settings.model_validate(base | overrides)


def cloud(tmp_path: Path, fake: FakeEndpoints, **overrides: Any) -> Settings:
    return settings(
        tmp_path,
        openai_api_key=OPENAI_KEY,
        elevenlabs_api_key=ELEVENLABS_KEY,
        openai_base_url=fake.openai_base_url,
        elevenlabs_base_url=fake.elevenlabs_base_url,
        **overrides,
    )


async def test_without_keys_a_call_can_still_be_held(tmp_path: Path) -> None:
    providers = build_providers(settings(tmp_path, stt_provider="auto"))
    assert isinstance(providers.llm, ScriptedLanguageModel)
    assert isinstance(providers.tts, EspeakTextToSpeech)
    notes = " ".join(providers.missing)
    assert "OPENAI_API_KEY" in notes
    assert "ELEVENLABS_API_KEY" in notes
    if importlib.util.find_spec("faster_whisper") is None:
        assert providers.stt is None
        assert "faster-whisper" in notes
    else:
        assert providers.stt is not None
        assert providers.stt.name.startswith("faster-whisper")
    assert providers.profile is not None
    assert providers.profile.company_name == "Stadtwerke Musterstadt"
    await providers.aclose()


async def test_with_keys_the_cloud_engines_share_their_clients(tmp_path: Path, fake: FakeEndpoints) -> None:
    providers = build_providers(cloud(tmp_path, fake, openai_stt_model="whisper-1"))
    assert isinstance(providers.tts, ElevenLabsTextToSpeech)
    # One rotation of OpenAI clients for STT and LLM, one of ElevenLabs clients: each closed once.
    assert len(providers.closers) == 2 * clients_for(200)
    assert providers.describe() == {
        "stt": "openai:whisper-1 (hedged)",
        "llm": "openai:gpt-4o-mini (hedged)",
        "tts": "elevenlabs:eleven_flash_v2_5",
    }
    assert providers.missing == []
    assert isinstance(providers.backup_tts, EspeakTextToSpeech)
    assert providers.stt is not None
    await providers.stt.transcribe(Utterance(synthesize_pcm16("Guten Tag.")))
    (request,) = fake.behaviour.requests_to("stt")
    assert request.body["model"] == "whisper-1"
    assert "Zählerstand" in request.body["prompt"]
    await providers.aclose()


async def test_without_hedges_the_engines_are_the_plain_adapters(tmp_path: Path, fake: FakeEndpoints) -> None:
    providers = build_providers(cloud(tmp_path, fake, stt_hedge_after_s=0, llm_hedge_after_s=0))
    assert isinstance(providers.stt, OpenAISpeechToText)
    assert isinstance(providers.llm, OpenAILanguageModel)
    await providers.aclose()


async def test_the_sdks_do_not_retry_on_their_own(tmp_path: Path, fake: FakeEndpoints) -> None:
    """Our budget makes exactly one retry of a 500; an SDK retry on top would show as more requests."""
    providers = build_providers(cloud(tmp_path, fake, stt_hedge_after_s=0))
    assert providers.stt is not None
    fake.behaviour.inject("stt", Fault.SERVER_ERROR, count=-1)
    with pytest.raises(ProviderError):
        await providers.stt.transcribe(Utterance(synthesize_pcm16("Guten Tag.")))
    assert len(fake.behaviour.requests_to("stt")) == 2
    await providers.aclose()


async def test_a_fallback_model_on_another_endpoint_answers_for_the_primary(
    tmp_path: Path, fake: FakeEndpoints
) -> None:
    providers = build_providers(
        cloud(
            tmp_path,
            fake,
            llm_fallback_model="fallback-model",
            llm_fallback_base_url=fake.openai_base_url,
            llm_fallback_api_key=OPENAI_KEY,
        )
    )
    assert providers.llm is not None
    assert providers.describe()["llm"] == "openai:gpt-4o-mini → openai:fallback-model@fallback-endpoint"
    fake.behaviour.inject("chat", Fault.RATE_LIMIT, count=-1, model="gpt-4o-mini")
    parts = [p async for p in providers.llm.stream_reply([Message("user", "Hallo")], [])]
    assert "".join(p.text for p in parts if isinstance(p, TextDelta)) == fake.behaviour.default_reply.text
    assert [r.body["model"] for r in fake.behaviour.requests_to("chat")][-1] == "fallback-model"
    # The other endpoint has clients of its own, closed with the rest.
    assert len(providers.closers) == 3 * clients_for(200)
    await providers.aclose()


async def test_explicit_choices_are_honoured(tmp_path: Path, fake: FakeEndpoints) -> None:
    providers = build_providers(
        cloud(tmp_path, fake, llm_provider="scripted", tts_provider="espeak", stt_provider="none")
    )
    assert providers.describe() == {"stt": "missing", "llm": "scripted", "tts": "espeak-ng:de"}
    assert any("STT_PROVIDER=none" in n for n in providers.missing)
    await providers.aclose()


async def test_explicit_cloud_choice_without_key_says_why(tmp_path: Path) -> None:
    providers = build_providers(
        settings(tmp_path, stt_provider="openai", llm_provider="openai", tts_provider="elevenlabs")
    )
    assert not providers.ready
    assert providers.describe() == {"stt": "missing", "llm": "missing", "tts": "missing"}
    assert len([n for n in providers.missing if "is not set" in n]) == 3


def test_broken_profile_stops_the_build(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("nonsense = ", encoding="utf-8")
    with pytest.raises(ConfigError):
        build_providers(settings(tmp_path, business_profile=bad))


async def test_a_whole_turn_through_the_sdks_and_the_fakes(tmp_path: Path, fake: FakeEndpoints) -> None:
    providers = build_providers(cloud(tmp_path, fake))
    assert providers.stt
    assert providers.llm
    assert providers.tts
    heard = await providers.stt.transcribe(
        Utterance(synthesize_pcm16("Ich möchte meinen Zählerstand melden."))
    )
    assert heard.text == fake.behaviour.default_transcript
    parts = [
        p
        async for p in providers.llm.stream_reply([Message("user", heard.text)], [ToolSpec("end_call", "x")])
    ]
    reply = "".join(p.text for p in parts if isinstance(p, TextDelta))
    audio = b"".join([c async for c in providers.tts.synthesize(reply)])
    assert len(audio) > 8000

    stt_request, chat_request, tts_request = fake.behaviour.requests
    assert stt_request.body["model"] == "gpt-4o-mini-transcribe"
    assert stt_request.body["language"] == "de"
    assert "Stadtwerke Musterstadt" in stt_request.body["prompt"]
    assert stt_request.body["file_filename"] == "utterance.wav"
    assert chat_request.body["model"] == "gpt-4o-mini"
    assert chat_request.body["stream"] is True
    assert chat_request.body["tools"][0]["function"]["name"] == "end_call"
    assert chat_request.body["messages"] == [{"role": "user", "content": heard.text}]
    assert tts_request.body["query"]["output_format"] == "ulaw_8000"
    assert tts_request.body["model_id"] == "eleven_flash_v2_5"
    assert tts_request.body["language_code"] == "de"
    assert tts_request.body["voice_id"] == "21m00Tcm4TlvDq8ikWAM"
    assert tts_request.headers["xi-api-key"] == "***"  # the log never holds a key

    assert providers.catalogue is not None
    assert await providers.warm_phrases() == len(providers.catalogue.all())
    assert providers.cached_phrase(providers.catalogue.greeting)
    await providers.aclose()


async def test_every_call_of_a_full_process_gets_a_connection(tmp_path: Path, fake: FakeEndpoints) -> None:
    # With httpx's default pool (100 connections) the 101st simultaneous sentence waited for a free
    # connection until its first-byte budget ran out, and the caller heard the backup voice. Pooling is
    # what is tested, not latency: the budget is generous, so a loaded machine's slow first bytes pass,
    # while a stream that never gets a connection still fails (its budget runs out before the release).
    calls = 150
    providers = build_providers(
        cloud(tmp_path, fake, max_concurrent_calls=calls, tts_first_byte_timeout_s=POOLING_BUDGET_S)
    )
    assert providers.tts
    tts = providers.tts
    fake.behaviour.pace("tts", per_token_ms=300)  # each stream stays open, as while a reply is spoken
    release, all_started = asyncio.Event(), asyncio.Event()
    started: list[int] = []

    async def one_sentence() -> None:
        stream = tts.synthesize("Guten Tag, hier sind die Stadtwerke.")
        started.append(len(await anext(stream)))
        if len(started) == calls:
            all_started.set()
        await release.wait()
        await stream.aclose()  # type: ignore[attr-defined]

    tasks = [asyncio.create_task(one_sentence()) for _ in range(calls)]
    # A stream that cannot get a connection fails with ProviderError once its first-byte budget is spent.
    waiter = asyncio.create_task(all_started.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    release.set()
    await asyncio.gather(*tasks)
    assert len(started) == calls
    assert all(n > 0 for n in started)
    await providers.aclose()


async def test_a_big_process_spreads_its_requests_over_small_pools(
    tmp_path: Path, fake: FakeEndpoints
) -> None:
    providers = build_providers(cloud(tmp_path, fake, max_concurrent_calls=200))
    assert providers.stt is not None
    clients = 200 // CALLS_PER_CLIENT
    assert clients_for(200) == clients
    utterance = Utterance(synthesize_pcm16("Guten Tag."))
    for _ in range(2 * clients):
        await providers.stt.transcribe(utterance)
    # Every client served its share, over a connection it kept (one per pool, not one per request):
    # the fake sees as many client ports as there are clients, each used twice.
    ports = Counter(r.client_port for r in fake.behaviour.requests_to("stt"))
    assert len(ports) == clients
    assert set(ports.values()) == {2}
    await providers.aclose()


async def test_the_local_engine_can_back_the_cloud_stt(tmp_path: Path, fake: FakeEndpoints) -> None:
    providers = build_providers(cloud(tmp_path, fake, stt_local_fallback=True))
    if importlib.util.find_spec("faster_whisper") is None:
        assert any("STT_LOCAL_FALLBACK" in n for n in providers.missing)
    else:
        assert providers.describe()["stt"].startswith("openai:gpt-4o-mini-transcribe → faster-whisper:")
    await providers.aclose()
