"""The fixed-phrase catalogue and its on-disk cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from structlog.testing import capture_logs

from dialogue.phrases import PhraseCache, german_catalogue, phrase_key
from media.errors import ProviderError


class CountingTTS:
    """A TTS double that counts syntheses and can be switched off like a provider outage."""

    def __init__(self, voice: str = "v1", *, down: bool = False) -> None:
        self.name = f"counting:{voice}"
        self.voice = voice
        self.down = down
        self.calls = 0

    @property
    def cache_key(self) -> str:
        return f"counting:{self.voice}:ulaw_8000"

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.calls += 1
        if self.down:
            raise ProviderError("tts", "HTTP 500: down", retryable=True, status=500)
        yield self.voice.encode() + b":"
        yield text.encode()


def test_catalogue_is_german_and_complete() -> None:
    catalogue = german_catalogue("Stadtwerke Musterstadt")
    assert "Stadtwerke Musterstadt" in catalogue.greeting
    assert catalogue.reprompts[0] == "Sind Sie noch da?"
    assert catalogue.handover.startswith("Ich verbinde Sie mit einem Mitarbeiter.")
    assert "nicht verstanden" in catalogue.fallback_for("stt")
    assert "nicht geklappt" in catalogue.fallback_for("llm")
    assert catalogue.fallback_for("anything") == catalogue.llm_fallback
    texts = catalogue.all()
    assert len(texts) == len(set(texts)) >= 10
    assert catalogue.greeting in texts
    assert catalogue.transfer_unavailable in texts


def test_key_depends_on_text_and_voice() -> None:
    assert phrase_key("Hallo", "a") == phrase_key("Hallo", "a")
    assert phrase_key("Hallo", "a") != phrase_key("Hallo", "b")
    assert phrase_key("Hallo", "a") != phrase_key("Hallo!", "a")


async def test_warm_then_get_from_memory_and_disk(tmp_path: Path) -> None:
    tts = CountingTTS()
    cache = PhraseCache(tmp_path)
    assert cache.get("Guten Tag.", tts) is None
    assert await cache.warm(tts, ["Guten Tag.", "Auf Wiederhören!", "Guten Tag."]) == 2
    assert cache.get("Guten Tag.", tts) == b"v1:Guten Tag."
    assert len(list(tmp_path.glob("*.ulaw"))) == 2  # noqa: ASYNC240 - a test peeking at its tmp dir

    # A new process: everything comes from disk, no synthesis, even with the provider down.
    tts.down = True
    later = PhraseCache(tmp_path)
    assert await later.warm(tts, ["Guten Tag.", "Auf Wiederhören!"]) == 2
    assert later.get("Auf Wiederhören!", tts) == "v1:Auf Wiederhören!".encode()
    assert tts.calls == 2


async def test_another_voice_is_never_served_from_the_cache(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path)
    await cache.warm(CountingTTS("v1"), ["Hallo."])
    assert cache.get("Hallo.", CountingTTS("v2")) is None


async def test_warming_failures_are_logged_not_raised(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path)
    with capture_logs() as logs:
        assert await cache.warm(CountingTTS(down=True), ["Hallo.", "Tschüss."]) == 0
    assert [e["event"] for e in logs].count("phrase_warm_failed") == 2


async def test_fallback_voice_covers_what_the_primary_never_synthesized(tmp_path: Path) -> None:
    local = CountingTTS("local")
    cache = PhraseCache(tmp_path, fallback=local)
    primary = CountingTTS("cloud", down=True)
    assert await cache.warm(primary, ["Einen Moment bitte."]) == 1
    assert cache.get("Einen Moment bitte.", primary) == b"local:Einen Moment bitte."


async def test_memory_only_cache_without_directory() -> None:
    cache = PhraseCache(None)
    tts = CountingTTS()
    await cache.warm(tts, ["Hallo."])
    assert cache.get("Hallo.", tts) == b"v1:Hallo."


async def test_unwritable_directory_still_caches_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = PhraseCache(blocker / "phrases")
    tts = CountingTTS()
    with capture_logs() as logs:
        assert await cache.warm(tts, ["Hallo."]) == 1
    assert cache.get("Hallo.", tts) == b"v1:Hallo."
    assert any(e["event"] == "phrase_store_failed" for e in logs)


async def test_real_espeak_phrases_are_ulaw(tmp_path: Path) -> None:
    from media.tts_espeak import EspeakTextToSpeech

    tts = EspeakTextToSpeech()
    cache = PhraseCache(tmp_path)
    catalogue = german_catalogue("Stadtwerke Musterstadt")
    assert await cache.warm(tts, catalogue.reprompts) == len(catalogue.reprompts)
    audio = cache.get("Sind Sie noch da?", tts)
    assert audio is not None
    assert 4000 < len(audio) < 40000
