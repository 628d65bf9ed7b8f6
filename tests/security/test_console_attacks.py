"""Attacks on the console, each with its expected refusal and a check that nothing was lost and the
operator's own session went on working. The log-line leak check runs after each (see conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from console.auth import COOKIE_NAME
from dialogue.events import CallStarted, TranscriptEvent
from tests.console.conftest import console_client, log_in, log_in_async, publish_on_app_loop, with_csrf
from tests.security.conftest import CALLER, CONSOLE_PASSWORD, SECRET_KEY
from tests.support.server import run_app
from web.app import create_app
from web.calls import TwilioEdge
from web.console_routes import CSRF_HEADER
from web.keys import KEY_FILE
from web.settings import Settings

FORWARDING = (
    {"x-forwarded-for": "127.0.0.1"},
    {"forwarded": "for=127.0.0.1;host=localhost;proto=https"},
    {"x-real-ip": "127.0.0.1"},
    {"x-forwarded-host": "localhost", "x-forwarded-proto": "https"},
)


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "stt_provider": "none",
        "data_dir": tmp_path,
        "console_password": CONSOLE_PASSWORD,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[TestClient[object]]:
    """The operator's logged-in session, with one call on record that no attack may lose."""
    with console_client(settings_for(tmp_path)) as client:
        assert log_in(client, CONSOLE_PASSWORD).status_code == 303
        publish_on_app_loop(
            client,
            [
                CallStarted(call_sid="CAkeep", caller="+49******78"),
                TranscriptEvent(call_sid="CAkeep", role="caller", text="Meine Frage", turn=1),
            ],
        )
        yield client


def still_fine(client: TestClient[object]) -> None:
    page = client.get("/console/calls/CAkeep")
    assert page.status_code == 200
    assert "Meine Frage" in page.text


def attacker(client: TestClient[object]) -> TestClient[object]:
    """A second client on the same app: its own cookie jar, no login. It is served on the app's own loop,
    as a real server serves every client; by default each of its requests would run the app on a fresh
    loop of its own, next to the loop that owns the app's queues and tasks."""
    other: TestClient[object] = TestClient(app=client.app, base_url=str(client.base_url))
    other.blocking_portal = client.blocking_portal
    other.follow_redirects = False
    return other


async def test_forwarded_headers_from_loopback_do_not_open_the_console(tmp_path: Path) -> None:
    """The old rule (loopback without proxy headers gets in) is gone: loopback proves nothing."""
    for password in (CONSOLE_PASSWORD, ""):
        app = create_app(settings_for(tmp_path / (password or "none"), console_password=password))
        async with run_app(app) as base, httpx.AsyncClient(base_url=base) as web:
            for headers in ({}, *FORWARDING):
                for path in ("/console", "/console/events", "/console/calls/CA1/recording.wav"):
                    resp = await web.get(path, headers=headers)
                    assert resp.status_code == 401, (password, headers, path)
            ready = await web.get("/ready", headers=FORWARDING[0])
            assert set(ready.json()) == {"ready", "status"}
            if password:
                assert (await log_in_async(web, password)).status_code == 303
                assert (await web.get("/console")).status_code == 200


def test_a_foreign_host_header_is_refused_everywhere(operator: TestClient[object]) -> None:
    """DNS rebinding: the browser sends the attacker's host name to our address."""
    evil = attacker(operator)
    for host in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "evil.example:8000"):
        for method, path in (
            ("GET", "/console"),
            ("GET", "/console/login"),
            ("GET", "/ready"),
            ("POST", "/voice"),
        ):
            resp = evil.request(method, path, headers={"host": host})
            assert resp.status_code == 421, (host, path)
            assert "Meine Frage" not in resp.text
        with (
            pytest.raises(WebSocketDisconnect),
            evil.websocket_connect("/console/phone", headers={"host": host}) as ws,
        ):
            ws.receive_text()
    assert evil.get("/health", headers={"host": "10.0.0.5:8000"}).status_code == 200  # probes by address
    # even the operator's valid cookie does not help a page served under a foreign name
    assert operator.get("/console", headers={"host": "evil.example"}).status_code == 421
    still_fine(operator)


def test_login_brute_force_is_throttled_per_client(operator: TestClient[object]) -> None:
    guesser = attacker(operator)
    with_csrf(guesser)
    codes = [log_in(guesser, f"guess-{n}").status_code for n in range(5)]
    assert codes == [401] * 5
    blocked = log_in(guesser, CONSOLE_PASSWORD)  # even the right password now waits
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert COOKIE_NAME not in blocked.headers.get("set-cookie", "")
    for headers in FORWARDING:  # a spoofed forwarding header is not a new client
        resp = guesser.post("/console/login", data={"password": "x"}, headers=headers)
        assert resp.status_code == 429
    assert guesser.get("/console/login?token=guess").status_code == 429  # the URL form shares the budget
    still_fine(operator)  # the logged-in operator is not locked out


def test_forged_tampered_foreign_and_replayed_cookies_are_refused(
    tmp_path: Path, operator: TestClient[object]
) -> None:
    good = str(operator.cookies[COOKIE_NAME])
    expiry, nonce, mac = good.split(".")
    forged = (
        "1.2.3",
        f"{int(expiry) + 10**6}.{nonce}.{mac}",  # extended expiry, old signature
        f"{expiry}.{nonce}x.{mac}",
        f"{expiry}.{nonce}.{'0' * len(mac)}",
        good + "0",
    )
    evil = attacker(operator)
    for value in forged:
        evil.cookies.set(COOKIE_NAME, value)
        assert evil.get("/console/events").status_code == 401, value
        assert set(evil.get("/ready").json()) == {"ready", "status"}
    # a cookie from another instance (another secret key, same password) is foreign here
    with console_client(settings_for(tmp_path / "other", secret_key=SECRET_KEY)) as other:
        log_in(other, CONSOLE_PASSWORD)
        foreign = str(other.cookies[COOKIE_NAME])
    evil.cookies.set(COOKIE_NAME, foreign)
    assert evil.get("/console/events").status_code == 401
    # a copied cookie works until its owner logs out, then never again
    thief = attacker(operator)
    thief.cookies.set(COOKIE_NAME, good)
    assert thief.get("/console/calls/CAkeep").status_code == 200
    session_two = attacker(operator)
    assert log_in(session_two, CONSOLE_PASSWORD).status_code == 303
    assert operator.post("/console/logout").status_code == 303
    assert thief.get("/console/calls/CAkeep").status_code == 401
    still_fine(session_two)


def test_posts_without_a_valid_csrf_token_are_refused_and_change_nothing(
    operator: TestClient[object],
) -> None:
    edge = TwilioEdge.of(operator.app.state.ctx)
    sid = "BR" + "a" * 32
    for token in (None, "", "0" * 128, "not-a-token"):
        headers = {CSRF_HEADER: token} if token is not None else {}
        bare = attacker(operator)
        bare.cookies.set(COOKIE_NAME, str(operator.cookies[COOKIE_NAME]))  # even with the session cookie
        issued = bare.post(f"/console/browser-call/{sid}/token", headers=headers)
        assert issued.status_code == 403, token
        assert bare.post("/console/logout", headers=headers).status_code == 403
        assert (
            bare.post("/console/login", data={"password": CONSOLE_PASSWORD}, headers=headers).status_code
            == 403
        )
    assert edge.tokens.outstanding == 0
    still_fine(operator)  # the refused logout did not end the session


def test_path_tricks_on_downloads_never_leave_the_recordings(
    tmp_path: Path, operator: TestClient[object]
) -> None:
    key = (tmp_path / KEY_FILE).read_text()
    (tmp_path / "recordings").mkdir(exist_ok=True)
    for sid in (
        "..%2F..%2Fsecret_key",
        "%2e%2e%2fsecret_key",
        "..%5Csecret_key",
        "....//secret_key",
        "%00",
        "CA1%2F..%2F..%2Fcalls.sqlite3",
        "x" * 3000,
    ):
        for suffix in ("recording.wav", "transcript.json"):
            resp = operator.get(f"/console/calls/{sid}/{suffix}")
            assert resp.status_code in (400, 404), (sid, resp.status_code)
            assert key not in resp.text
            assert b"SQLite format" not in resp.content
    still_fine(operator)


@pytest.mark.parametrize(
    "path", ["/console/login", "/console/logout", "/console/browser-call/BR" + "b" * 32 + "/token"]
)
def test_oversized_and_garbage_bodies_on_console_posts(operator: TestClient[object], path: str) -> None:
    """Sent with a valid CSRF token, so the body itself is what is judged; never a server error."""
    evil = attacker(operator)
    with_csrf(evil)
    form = {"content-type": "application/x-www-form-urlencoded"}
    big = evil.post(path, content=b"a=" + b"x" * (2 << 20), headers=form)
    assert big.status_code == 413
    for body, kind in (
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"password=" + b"%" * 5000, "application/x-www-form-urlencoded"),
    ):
        resp = evil.post(path, content=body, headers={"content-type": kind})
        # logout without a session is harmless (303); everything else is a client error
        assert resp.status_code in (303, 400, 401, 403, 415), (path, body[:20], resp.status_code)
        cookie = resp.headers.get("set-cookie", "")
        assert not cookie.startswith(f"{COOKIE_NAME}=") or "Max-Age=0" in cookie  # never a session
    still_fine(operator)


def test_ready_detail_only_behind_the_login(operator: TestClient[object]) -> None:
    anonymous = attacker(operator).get("/ready")
    assert anonymous.json() == {"ready": False, "status": "not_ready"}
    detail = operator.get("/ready").json()
    assert detail["signatures"] == "disabled"
    assert CALLER not in str(detail)


@pytest.mark.parametrize("mask", [True, False])
def test_dictated_digits_in_the_console_follow_the_setting(tmp_path: Path, mask: bool) -> None:
    iban = "DE89 3704 0044 0532 0130 00"
    with console_client(settings_for(tmp_path, console_mask_digits=mask)) as client:
        log_in(client, CONSOLE_PASSWORD)
        publish_on_app_loop(
            client,
            [
                CallStarted(call_sid="CAiban", caller="+49******78"),
                TranscriptEvent(call_sid="CAiban", role="caller", text=f"Meine IBAN ist {iban}", turn=1),
            ],
        )
        page = client.get("/console/calls/CAiban").text
        document = client.get("/console/calls/CAiban/transcript.json").text
        for shown in (page, document):
            assert ("3704 0044" in shown) is not mask
            assert "Meine IBAN ist DE89" in shown
