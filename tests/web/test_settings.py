from __future__ import annotations

from pathlib import Path

import pytest

from media.errors import ConfigError
from web.settings import Settings, load_settings, parse_dtmf_actions


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    assert settings.port == 8000
    assert not settings.signatures_enabled
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")


def test_seed_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "el-test-1234")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok-1234")
    monkeypatch.setenv("PUBLIC_URL", "https://bot.example.com/")
    settings = load_settings(None)
    assert settings.openai_api_key.get_secret_value() == "sk-test-1234"
    assert settings.elevenlabs_api_key.get_secret_value() == "el-test-1234"
    assert settings.twilio_account_sid == "AC123"
    assert settings.signatures_enabled
    assert settings.public_url == "https://bot.example.com"
    assert "sk-test-1234" not in repr(settings)


def test_env_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=9001\nEND_OF_TURN_SILENCE_MS=700\n")
    monkeypatch.setenv("PORT", "9002")
    settings = load_settings(env)
    assert settings.port == 9002
    assert settings.end_of_turn_silence_ms == 700


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("PUBLIC_URL", "bot.example.com"),
        ("BARGE_IN_MS", "5"),
        ("LLM_PROVIDER", "claude"),
        ("DTMF_ACTIONS", "0=dance"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert name in info.value.detail


def test_dtmf_actions_parse() -> None:
    assert parse_dtmf_actions("0=transfer, 9=hangup,*=repeat") == {
        "0": "transfer",
        "9": "hangup",
        "*": "repeat",
    }
    assert Settings(dtmf_actions="").dtmf_action_map == {}


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    listed = {
        line.split("=", 1)[0].strip()
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert listed == {name.upper() for name in Settings.model_fields}


def test_the_example_file_loads_as_a_dotenv(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8"))
    settings = load_settings(env)
    assert settings.business_profile is None
    assert settings.phrase_cache_dir is None
    assert settings.public_url == ""
    assert settings.dtmf_action_map == {"0": "transfer"}
