"""``voicebot doctor`` against the loopback fakes: one real request per provider, faults named with a fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes.behaviour import FakeBehaviour
from fakes.server import FakeEndpoints, run_fake_providers
from fakes.twilio_rest import TwilioRestFake
from web.doctor import CheckResult, run_doctor, run_from_cli
from web.providers import build_providers
from web.settings import Settings

OPENAI_KEY = "sk-doctor"
ELEVENLABS_KEY = "xi-doctor"
SID = "AC" + "d" * 32
TOKEN = "doctor-token"
NUMBER = "+4930999000"
PUBLIC = "https://bot.example"


@pytest.fixture
async def fake() -> AsyncIterator[FakeEndpoints]:
    behaviour = FakeBehaviour(openai_api_key=OPENAI_KEY, elevenlabs_api_key=ELEVENLABS_KEY)
    async with run_fake_providers(behaviour, speech=False) as endpoints:
        yield endpoints


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioRestFake]:
    async with TwilioRestFake(SID, TOKEN) as rest:
        rest.add_number(NUMBER, voice_url=f"{PUBLIC}/voice", status_callback=f"{PUBLIC}/status")
        yield rest


def cloud(tmp_path: Path, fake: FakeEndpoints, twilio: TwilioRestFake, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "openai_api_key": OPENAI_KEY,
        "elevenlabs_api_key": ELEVENLABS_KEY,
        "openai_base_url": fake.openai_base_url,
        "elevenlabs_base_url": fake.elevenlabs_base_url,
        "twilio_account_sid": SID,
        "twilio_auth_token": TOKEN,
        "twilio_api_base_url": twilio.base_url,
        "public_url": PUBLIC,
        "data_dir": tmp_path,
    }
    return Settings.model_validate(base | overrides)


async def doctor(settings: Settings, timeout_s: float = 5.0) -> dict[str, CheckResult]:
    providers = build_providers(settings)
    try:
        results = await run_doctor(settings, providers, timeout_s=timeout_s)
    finally:
        await providers.aclose()
    for result in results:
        print(result.line())  # the README's figures come from this output
    return {r.name: r for r in results}


async def test_every_check_passes_against_working_providers(
    tmp_path: Path, fake: FakeEndpoints, twilio: TwilioRestFake
) -> None:
    results = await doctor(cloud(tmp_path, fake, twilio))
    assert all(r.ok and not r.skipped for r in results.values()), results
    assert "Zählerstand" in results["stt"].verdict
    assert results["stt"].engine.startswith("openai:")
    assert results["tts"].verdict.endswith("of ulaw_8000 audio")
    assert results["twilio"].verdict == f"{NUMBER} sends calls to {PUBLIC}/voice"
    tts_request = fake.behaviour.requests_to("tts")[0]
    assert "ulaw_8000" in tts_request.path or "ulaw_8000" in str(tts_request.body)


@pytest.mark.parametrize(
    ("setup", "check", "fix"),
    [
        ({"openai_api_key": "sk-wrong"}, "llm", "wrong key (HTTP 401): check OPENAI_API_KEY"),
        ({"elevenlabs_api_key": "xi-wrong"}, "tts", "wrong key (HTTP 401): check ELEVENLABS_API_KEY"),
        ({"openai_base_url": "http://127.0.0.1:9/v1"}, "stt", "cannot reach http://127.0.0.1:9/v1"),
        ({"fault": ("chat", "429")}, "llm", "quota or rate limit (HTTP 429)"),
        ({"fault": ("tts", "timeout")}, "tts", "no answer in time"),
        ({"twilio_auth_token": "wrong"}, "twilio", "refused the credentials"),
        ({"public_url": "https://elsewhere.example"}, "twilio", "run `voicebot connect`"),
    ],
)
async def test_a_failure_names_the_fix(
    tmp_path: Path,
    fake: FakeEndpoints,
    twilio: TwilioRestFake,
    setup: dict[str, Any],
    check: str,
    fix: str,
) -> None:
    overrides = dict(setup)
    fault = overrides.pop("fault", None)
    if fault is not None:
        fake.behaviour.inject(fault[0], fault[1], count=-1)
    results = await doctor(cloud(tmp_path, fake, twilio, **overrides), timeout_s=2.0)
    assert not results[check].ok
    assert fix in results[check].verdict


def test_keyless_doctor_passes_on_local_engines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_from_cli(Settings(data_dir=tmp_path, openai_api_key="", elevenlabs_api_key=""), 30.0)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok   stt    faster-whisper" in out
    assert "skip twilio" in out


def test_exit_code_is_non_zero_when_a_role_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_from_cli(Settings(data_dir=tmp_path, stt_provider="none", openai_api_key=""), 5.0)
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL stt" in out


async def test_a_local_openai_compatible_server_takes_the_llm_role(
    tmp_path: Path, fake: FakeEndpoints, twilio: TwilioRestFake
) -> None:
    # What an operator sets for llama.cpp's llama-server or Ollama: their base URL, any key, their model
    # name, and local speech-to-text (neither serves /audio/transcriptions).
    fake.behaviour.openai_api_key = "sk-no-key-required"
    settings = cloud(
        tmp_path,
        fake,
        twilio,
        openai_api_key="sk-no-key-required",
        openai_llm_model="qwen2.5:7b-instruct",
        stt_provider="local",
        elevenlabs_api_key="",
    )
    results = await doctor(settings, timeout_s=30.0)
    assert results["llm"].ok, results["llm"]
    assert results["llm"].engine.startswith("openai:qwen2.5:7b-instruct")
    assert results["stt"].engine.startswith("faster-whisper:")
    [chat] = fake.behaviour.requests_to("chat")
    assert chat.body["model"] == "qwen2.5:7b-instruct"
    assert fake.behaviour.requests_to("stt") == []
