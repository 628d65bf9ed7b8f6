from __future__ import annotations

from litestar.testing import TestClient

from web.app import create_app
from web.settings import Settings


def test_health_and_ready_without_keys() -> None:
    with TestClient(app=create_app(Settings(stt_provider="none"))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        resp = client.get("/ready")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "not_ready"
        assert "stt provider missing" in body["reasons"]
        assert any("OPENAI_API_KEY" in note for note in body["notes"])
