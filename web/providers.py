"""Assembles the concrete STT, LLM and TTS engines from the settings: the composition entry point.

``auto`` prefers the cloud provider when its key is set and falls back to a local engine otherwise, so a
machine with no keys can still hold a whole call. Which engine plays each role is decided in
``web.stt_choice`` and ``web.llm_tts_choice``; the cloud SDK clients they share are built in
``web.provider_clients``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dialogue.llm import LanguageModel
from dialogue.phrases import PhraseCache, PhraseCatalogue, german_catalogue
from dialogue.profile import BusinessProfile, load_profile
from media.clients import ClientSlots, clients_for
from media.speech import SpeechToText, TextToSpeech
from media.streaming_stt import StreamingSTT
from media.warmup import ProviderWarmup
from web.consent import with_recording_notice
from web.llm_tts_choice import pick_llm, pick_tts
from web.provider_clients import openai_clients
from web.settings import Settings
from web.stt_choice import pick_streaming_stt, pick_stt


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
    openai_client = openai_clients(settings, p) if openai_key else None

    pick_stt(settings, p, openai_client, profile)
    pick_streaming_stt(settings, p, openai_client, profile)
    pick_llm(settings, p, openai_client, profile)
    pick_tts(settings, p)
    p.phrases = PhraseCache(settings.phrase_cache_path, fallback=p.backup_tts)
    return p
