from __future__ import annotations

import time

from litestar.testing import TestClient

from console.views import CallView
from dialogue.events import CallEvent, TurnDecision, TurnLatency
from media.recording import StereoRecorder, recording_path
from tests.console.conftest import call_events, console_of, publish_on_app_loop


def publish(client: TestClient[object], events: list[CallEvent]) -> CallView:
    """Through the app's sink (channels → hub → view, and the store) on the app's loop; waits for both."""
    publish_on_app_loop(client, events)
    view = console_of(client).hub.live.get(events[0].call_sid)
    assert view is not None
    return view


def test_live_call_appears_on_the_calls_page_and_its_own_page(client: TestClient[object]) -> None:
    publish(client, call_events("CAlive", t0=time.time(), ended=False))
    page = client.get("/console").text
    assert 'data-call="CAlive"' in page.split("Recent calls")[0]
    assert "+49 *** ***123" in page
    call = client.get("/console/calls/CAlive").text
    assert 'sse-connect="/console/calls/CAlive/events"' in call
    assert 'id="state-badge" class="badge state-listening"' in call
    assert 'class="node current" data-state="listening"' in call
    assert "Wann haben Sie geöffnet?" in call
    assert '<del class="cut"' in call
    assert "bis freitags geöffnet." in call
    assert 'class="latency-row" data-turn="1"' in call
    assert "700 ms" in call
    assert "Downloads appear when the call has ended" in call
    assert client.get("/console/calls/CAlive/recording.wav").status_code == 409


def test_finished_call_has_history_row_transcript_and_recording(client: TestClient[object]) -> None:
    console = console_of(client)
    with StereoRecorder(recording_path(console.recordings, "CAdone")) as rec:
        rec.caller(b"\xff" * 1600)
    publish(client, call_events("CAdone", t0=time.time()))
    page = client.get("/console").text
    assert 'data-call="CAdone"' in page.split("Recent calls")[1]
    call = client.get("/console/calls/CAdone").text
    assert "sse-connect" not in call
    assert 'id="download-recording"' in call
    doc = client.get("/console/calls/CAdone/transcript.json")
    assert doc.status_code == 200
    assert "attachment" in doc.headers["content-disposition"]
    assert [t["role"] for t in doc.json()["turns"]] == ["bot", "caller", "bot"]
    wav = client.get("/console/calls/CAdone/recording.wav")
    assert wav.status_code == 200
    assert wav.headers["content-type"] == "audio/wav"
    assert wav.content[:4] == b"RIFF"
    assert len(wav.content) == 44 + 1600 * 4


def test_stored_call_is_served_after_a_restart(client: TestClient[object]) -> None:
    publish(client, call_events("CAold", t0=time.time() - 3600))
    console = console_of(client)
    console.hub.live._calls.clear()  # as if this process had restarted
    call = client.get("/console/calls/CAold")
    assert call.status_code == 200
    assert "Wann haben Sie geöffnet?" in call.text
    assert client.get("/console/calls/CAold/recording.wav").status_code == 404  # none was written
    assert client.get("/console/calls/CAnever").status_code == 404


def test_pages_carry_security_headers(client: TestClient[object]) -> None:
    resp = client.get("/console")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-frame-options"] == "DENY"


def test_browser_call_page_issues_a_fresh_call_and_a_one_time_token(client: TestClient[object]) -> None:
    page = client.get("/console/browser-call").text
    sid = page.split('data-call-sid="')[1].split('"')[0]
    assert sid.startswith("BR")
    assert len(sid) == 34
    assert f'sse-connect="/console/calls/{sid}/events"' in page
    assert '<script src="/console/static/phone.js" type="module">' in page
    assert "not started" in page  # no call yet: never shown as live
    # This bot has no speech-to-text: the page is told why before the microphone opens (a wired bot
    # issues the token: test_browser_phone.py).
    token = client.post(f"/console/browser-call/{sid}/token")
    assert token.status_code == 503
    assert "cannot take calls: no stt" in token.json()["detail"]
    assert "voicebot check" in token.json()["detail"]
    assert client.post("/console/browser-call/CA123/token").status_code == 400
    cross = client.post(f"/console/browser-call/{sid}/token", headers={"origin": "https://evil.example"})
    assert cross.status_code == 403


def test_static_island_and_vendored_htmx_are_served(client: TestClient[object]) -> None:
    for path in (
        "/console/static/phone.js",
        "/console/static/mic-worklet.js",
        "/console/static/ulaw.js",
        "/console/static/vendor/htmx-2.0.11.min.js",
        "/console/static/vendor/htmx-ext-sse-2.2.4.min.js",
        "/console/static/console.css",
    ):
        assert client.get(path).status_code == 200, path


def test_end_of_turn_decisions_show_in_the_protocol_log(client: TestClient[object]) -> None:
    events = call_events("CAturn", t0=time.time(), ended=False)
    ended = TurnDecision(
        call_sid="CAturn",
        at=events[6].at,
        ended=True,
        verdict="complete",
        reason="complete: question mark",
        hold_ms=200,
        waited_ms=200,
    )
    publish(client, [*events[:7], ended, *events[7:]])
    page = client.get("/console/calls/CAturn").text
    protocol = page.split('id="protocol-log"')[1]
    assert "turn ended" in protocol
    assert "after 200 ms of silence (complete: question mark)" in protocol


def test_a_preemptive_reply_shows_how_much_earlier_it_started(client: TestClient[object]) -> None:
    events = call_events("CApre", t0=time.time(), ended=False)
    early = TurnLatency(
        call_sid="CApre", at=events[6].at, turn=7, first_audio_ms=610.0, preemptive_saved_ms=287.0
    )
    publish(client, [*events, early])
    table = client.get("/console/calls/CApre").text.split('id="latency-table"')[1]
    row = table.split('data-turn="7"')[1].split("</tr>")[0]
    assert "preemptive, 287 ms earlier" in row
