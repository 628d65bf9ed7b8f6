from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from tests.console.conftest import TEST_BASE_URL, log_in
from web.app import create_app
from web.settings import Settings

PASSWORD = "ready-detail-password"


def test_health_and_ready_without_keys(tmp_path: Path) -> None:
    app = create_app(Settings(stt_provider="none", data_dir=tmp_path, console_password=PASSWORD))
    with TestClient(app=app, base_url=TEST_BASE_URL) as client:
        client.follow_redirects = False
        assert client.get("/health").json() == {"status": "ok"}
        anonymous = client.get("/ready")
        assert anonymous.status_code == 503
        assert anonymous.json() == {"ready": False, "status": "not_ready"}  # nothing an attacker could use
        assert log_in(client, PASSWORD).status_code == 303
        resp = client.get("/ready")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "not_ready"
        assert body["signatures"] == "disabled"
        assert "stt provider missing" in body["reasons"]
        assert any("OPENAI_API_KEY" in note for note in body["notes"])


def test_ready_reports_configured_providers_when_keys_are_set(tmp_path: Path) -> None:
    settings = Settings(
        openai_api_key="sk-anything",
        elevenlabs_api_key="el-anything",
        data_dir=tmp_path,
        console_password=PASSWORD,
    )
    with TestClient(app=create_app(settings), base_url=TEST_BASE_URL) as client:
        client.follow_redirects = False
        assert client.get("/ready").json() == {"ready": True, "status": "ready"}
        log_in(client, PASSWORD)
        resp = client.get("/ready")
        assert resp.status_code == 200
        body = resp.json()
        assert body["status"] == "ready"
        assert body["providers"]["stt"].startswith("openai:")
        assert body["providers"]["llm"].startswith("openai:")
        assert body["providers"]["tts"].startswith("elevenlabs:")
        assert "sk-anything" not in resp.text
