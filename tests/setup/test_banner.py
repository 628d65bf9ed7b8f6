"""The terminal banner of ``voicebot serve``: where to click, who plays each role, the line that adds more."""

from __future__ import annotations

from pathlib import Path

from web.banner import banner
from web.providers import build_providers
from web.settings import Settings


def test_keyless_banner_names_the_console_the_local_engines_and_what_adds_the_rest(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, openai_api_key="", elevenlabs_api_key="", host="0.0.0.0")
    text = banner(settings, build_providers(settings))
    assert "http://127.0.0.1:8000/console/browser-call" in text
    assert "speech-to-text faster-whisper:whisper-base" in text
    assert "language model scripted" in text
    assert "add OPENAI_API_KEY to .env" in text
    assert "add ELEVENLABS_API_KEY to .env" in text
    assert "`voicebot connect`" in text
    assert "/ready answers 200 once it is there" in text


def test_a_missing_role_is_shouted_and_a_configured_one_is_not(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, stt_provider="none", openai_api_key="sk-x", public_url="https://bot.example"
    )
    text = banner(settings, build_providers(settings))
    assert "speech-to-text missing   <- MISSING: calls are refused" in text
    assert "language model openai:gpt-4o-mini (hedged)\n" in text
    assert "Twilio webhooks go to https://bot.example/voice" in text
