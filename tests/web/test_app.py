from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from web.app import create_app
from web.settings import Settings


def test_health_and_ready_without_keys(tmp_path: Path) -> None:
    with TestClient(app=create_app(Settings(stt_provider="none", data_dir=tmp_path))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        resp = client.get("/ready")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "not_ready"
        assert "stt provider missing" in body["reasons"]
        assert any("OPENAI_API_KEY" in note for note in body["notes"])


def test_ready_reports_configured_providers_when_keys_are_set(tmp_path: Path) -> None:
    settings = Settings(openai_api_key="sk-anything", elevenlabs_api_key="el-anything", data_dir=tmp_path)
    with TestClient(app=create_app(settings)) as client:
        resp = client.get("/ready")
        assert resp.status_code == 200
        body = resp.json()
        assert body["status"] == "ready"
        assert body["providers"]["stt"].startswith("openai:")
        assert body["providers"]["llm"].startswith("openai:")
        assert body["providers"]["tts"].startswith("elevenlabs:")
        assert "sk-anything" not in resp.text
