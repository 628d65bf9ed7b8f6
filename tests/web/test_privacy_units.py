"""Small pure pieces of the privacy work; the whole-call and attack tests live in tests/security."""

from __future__ import annotations

from pathlib import Path

from dialogue.events import CallEvent, ProtocolEvent, TranscriptEvent
from dialogue.phrases import german_catalogue
from media.recording import StereoRecorder
from web.consent import ConsentWatch, with_recording_notice
from web.hosts import HostCheck, allowed_hosts, host_name
from web.keys import instance_secret
from web.settings import Settings


class Events:
    def __init__(self) -> None:
        self.seen: list[CallEvent] = []

    def publish(self, event: CallEvent) -> None:
        self.seen.append(event)


def test_host_names_without_ports() -> None:
    assert host_name("Example.COM:8000") == "example.com"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("localhost") == "localhost"


def test_allowed_hosts_default_and_explicit() -> None:
    hosts = allowed_hosts(Settings(host="192.168.1.4", public_url="https://Bot.Example.com/base"))
    assert {"localhost", "127.0.0.1", "::1", "192.168.1.4", "bot.example.com"} <= set(hosts)
    assert "0.0.0.0" not in allowed_hosts(Settings(host="0.0.0.0"))
    check = HostCheck(allowed_hosts(Settings(allowed_hosts="*.example.com, api.test")))
    assert check.allows("a.example.com:443")
    assert check.allows("example.com")
    assert check.allows("API.test")
    assert not check.allows("example.com.evil.test")
    assert not check.allows("localhost")  # explicit replaces the default
    assert not check.allows(None)
    assert HostCheck(["*"]).allows("anything")


def test_instance_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = instance_secret(settings)
    assert first == instance_secret(settings)
    assert len(first) == 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert instance_secret(Settings(data_dir=tmp_path, secret_key="shared")) != first


def test_notice_is_appended_once() -> None:
    catalogue = german_catalogue("Muster GmbH")
    noticed = with_recording_notice(catalogue, "Dieses Gespräch wird aufgezeichnet.")
    assert noticed.greeting.startswith(catalogue.greeting.rstrip())
    assert noticed.greeting.endswith("Dieses Gespräch wird aufgezeichnet.")
    assert with_recording_notice(noticed, "Dieses Gespräch wird aufgezeichnet.") == noticed
    assert noticed.greeting in noticed.all()  # cached ahead like every fixed phrase


def test_objection_phrases_match_whole_words_in_any_spelling(tmp_path: Path) -> None:
    def watch() -> tuple[ConsentWatch, StereoRecorder, Events]:
        recorder = StereoRecorder(tmp_path / "r.wav")
        events = Events()
        phrases = ("nicht aufzeichnen", "keine Aufnahme")
        return ConsentWatch(events, recorder, call_sid="CA1", phrases=phrases, digit="9"), recorder, events

    for said, objects in (
        ("Bitte NICHT aufzeichnen!", True),
        ("Keine Aufnahme, danke.", True),
        ("nicht auf-zeichnen", True),
        ("Können Sie das nicht aufzeichnen?", True),
        ("Ich möchte nichts aufzeichnen lassen", False),
        ("Meine Aufnahmeprüfung", False),
    ):
        consent, recorder, events = watch()
        consent.publish(TranscriptEvent(call_sid="CA1", role="caller", text=said))
        assert (consent.objected_by == "voice") is objects, said
        assert recorder.path.exists() is not objects, said
        assert (
            any(isinstance(e, ProtocolEvent) and e.name == "recording_stopped" for e in events.seen)
            is objects
        )
        recorder.close()
    consent, recorder, _ = watch()
    consent.publish(
        TranscriptEvent(call_sid="CA1", role="bot", text="nicht aufzeichnen")
    )  # the bot's own words
    consent.publish(ProtocolEvent(call_sid="CA1", name="dtmf", detail="1"))
    assert consent.objected_by is None
    consent.publish(ProtocolEvent(call_sid="CA1", name="dtmf", detail="9"))
    assert consent.objected_by == "keypad"
    assert not recorder.path.exists()
    recorder.caller(b"\xff" * 8000)  # later frames are not written anywhere
    recorder.close()
    assert not recorder.path.exists()


def test_the_objection_digit_cannot_also_be_a_dtmf_action() -> None:
    import pytest

    from media.errors import ConfigError
    from web.settings import load_settings

    with pytest.raises(ConfigError, match="RECORDING_OBJECTION_DIGIT"):
        load_settings(None, record_calls=True, dtmf_actions="9=hangup", recording_objection_digit="9")
    load_settings(None, record_calls=False, dtmf_actions="9=hangup", recording_objection_digit="9")
