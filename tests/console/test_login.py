from __future__ import annotations

import pytest
from litestar.exceptions import WebSocketDisconnect

from tests.console.conftest import PASSWORD, console_client, log_in, with_csrf
from web.console_routes import LOGIN_URL_FILE, Console
from web.settings import Settings

PROTECTED = ("/console", "/console/calls/CA1", "/console/browser-call", "/console/calls/CA1/transcript.json")


def test_pages_redirect_to_login_and_streams_get_401(settings: Settings) -> None:
    with console_client(settings) as client:
        for path in PROTECTED:
            resp = client.get(path, headers={"accept": "text/html"})
            assert resp.status_code == 303, path
            assert resp.headers["location"].startswith("/console/login?next=")
        sse = client.get("/console/events", headers={"accept": "text/event-stream"})
        assert sse.status_code == 401
        assert client.get("/console/calls/CA1/recording.wav").status_code == 401
        with_csrf(client)
        assert client.post("/console/browser-call/BR" + "0" * 32 + "/token").status_code == 401


def test_websocket_is_refused_without_login(settings: Settings) -> None:
    with (
        console_client(settings) as client,
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/console/phone") as ws,
    ):
        ws.receive_text()
    assert refused.value.code == 4401


def test_wrong_password_then_right_one(settings: Settings) -> None:
    with console_client(settings) as client:
        wrong = log_in(client, "nope", "/console/calls/CA1")
        assert wrong.status_code == 401
        assert "Wrong password." in wrong.text
        right = log_in(client, PASSWORD, "/console/calls/CA1")
        assert right.status_code == 303
        assert right.headers["location"] == "/console/calls/CA1"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        assert "Max-Age=" in cookie
        assert PASSWORD not in cookie
        assert client.get("/console").status_code == 200
        assert client.post("/console/logout").status_code == 303
        assert client.get("/console", headers={"accept": "text/html"}).status_code == 303


def test_login_only_redirects_into_the_console(settings: Settings) -> None:
    with console_client(settings) as client:
        for target in ("https://evil.example/", "//evil.example/console", "/elsewhere"):
            resp = log_in(client, PASSWORD, target)
            assert resp.headers["location"] == "/console", target


def test_without_password_a_start_up_token_is_the_only_way_in(tmp_path: object) -> None:
    settings = Settings(stt_provider="none", data_dir=tmp_path)  # type: ignore[arg-type]
    with console_client(settings) as client:
        page = client.get("/console", headers={"accept": "text/html"})
        assert page.status_code == 303  # wherever the request comes from: loopback proves nothing
        assert client.get("/console/events").status_code == 401
        assert log_in(client, "").status_code in (400, 401)
        console: Console = client.app.state.ctx.extras[Console.EXTRAS_KEY]
        url = (settings.data_dir / LOGIN_URL_FILE).read_text().strip()
        assert url == console.login_url()
        assert console.auth.access_token in url
        assert client.get("/console/login?token=wrong").status_code == 401
        ok = client.get(f"/console/login?token={console.auth.access_token}")
        assert ok.status_code == 303
        assert client.get("/console").status_code == 200
