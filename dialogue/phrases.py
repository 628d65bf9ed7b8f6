"""The fixed German sentences of a call, synthesized ahead and kept on disk.

When a stage fails the caller must hear something within about two seconds, and the stage that failed may be
TTS itself. So every sentence the bot says without the LLM (greeting, reprompts, goodbyes, fallbacks, the
handover) is synthesized at start-up and cached as μ-law files keyed by text and voice: they play from
memory, survive restarts, and still play while the TTS provider is down. A second, local engine can be
given as ``fallback``: a phrase the primary never managed to synthesize then plays in the local voice,
which is better than silence.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from media.speech import TextToSpeech

log = structlog.get_logger()

WARM_TIMEOUT_S: Final = 15.0
"""Per phrase while warming: start-up may be slow, but never stuck."""


@dataclass(frozen=True, slots=True)
class PhraseCatalogue:
    greeting: str
    reprompts: tuple[str, ...]
    """Said in turn after each silence; the last one before giving up."""
    goodbye: str
    goodbye_silence: str
    """Ending a call because the caller stopped answering."""
    stt_fallback: str
    llm_fallback: str
    tts_fallback: str
    handover: str
    transfer_unavailable: str
    anything_else: str

    def fallback_for(self, stage: str) -> str:
        """The apology for a failed stage (``stt``, ``llm``, ``tts``); a generic one for anything else."""
        return {"stt": self.stt_fallback, "llm": self.llm_fallback, "tts": self.tts_fallback}.get(
            stage, self.llm_fallback
        )

    def all(self) -> tuple[str, ...]:
        """Every distinct phrase, for warming the cache."""
        texts = [
            self.greeting, *self.reprompts, self.goodbye, self.goodbye_silence, self.stt_fallback,
            self.llm_fallback, self.tts_fallback, self.handover, self.transfer_unavailable,
            self.anything_else,
        ]  # fmt: skip
        return tuple(dict.fromkeys(texts))


def german_catalogue(company_name: str) -> PhraseCatalogue:
    return PhraseCatalogue(
        greeting=f"Guten Tag, Sie sprechen mit dem digitalen Assistenten der {company_name}. "
        "Wie kann ich Ihnen helfen?",
        reprompts=("Sind Sie noch da?", "Hallo? Sind Sie noch in der Leitung?"),
        goodbye="Vielen Dank für Ihren Anruf. Auf Wiederhören!",
        goodbye_silence="Ich höre leider nichts mehr. Bitte rufen Sie gern noch einmal an. Auf Wiederhören!",
        stt_fallback="Entschuldigung, ich habe Sie gerade nicht verstanden. "
        "Könnten Sie das bitte wiederholen?",
        llm_fallback="Einen Moment bitte, da hat etwas nicht geklappt. "
        "Können Sie Ihre Frage noch einmal stellen?",
        tts_fallback="Entschuldigung, da gab es eine technische Störung. Bitte wiederholen Sie Ihre Frage.",
        handover="Ich verbinde Sie mit einem Mitarbeiter. Bitte bleiben Sie dran.",
        transfer_unavailable="Leider ist gerade kein Mitarbeiter erreichbar. "
        "Bitte rufen Sie zu unseren Öffnungszeiten noch einmal an.",
        anything_else="Kann ich sonst noch etwas für Sie tun?",
    )


def phrase_key(text: str, tts_cache_key: str) -> str:
    """Stable file name for a phrase in one voice/model/format; the text itself may contain anything."""
    return hashlib.sha256(f"{tts_cache_key}\n{text}".encode()).hexdigest()


class PhraseCache:
    """μ-law of fixed phrases, in memory and (if ``directory`` is set) in files that outlive the process."""

    def __init__(self, directory: Path | None, *, fallback: TextToSpeech | None = None) -> None:
        self.directory = directory
        self.fallback = fallback
        self._memory: dict[str, bytes] = {}
        self._absent: set[str] = set()
        """Keys found missing on disk: every sentence of every reply asks, and a file read that fails is a
        blocking system call on the event loop each time. Only this process writes here after start-up."""

    def get(self, text: str, tts: TextToSpeech) -> bytes | None:
        """The phrase in ``tts``'s voice, else in the fallback voice, else None. Never does network I/O."""
        for key_source in (tts.cache_key, self.fallback.cache_key if self.fallback else None):
            if key_source is None:
                continue
            audio = self._load(phrase_key(text, key_source))
            if audio is not None:
                return audio
        return None

    async def warm(self, tts: TextToSpeech, phrases: Iterable[str], *, concurrency: int = 2) -> int:
        """Synthesizes what is missing; returns how many phrases are ready. Logs failures, never raises."""
        texts = list(dict.fromkeys(phrases))
        gate = asyncio.Semaphore(concurrency)

        async def one(text: str) -> bool:
            async with gate:
                if await self._ensure(text, tts):
                    return True
                return self.fallback is not None and await self._ensure(text, self.fallback)

        ready = sum(await asyncio.gather(*(one(t) for t in texts)))
        log.info("phrases_warmed", tts=tts.name, ready=ready, total=len(texts))
        return ready

    async def _ensure(self, text: str, tts: TextToSpeech) -> bool:
        key = phrase_key(text, tts.cache_key)
        if self._load(key) is not None:
            return True
        try:
            async with asyncio.timeout(WARM_TIMEOUT_S):
                audio = b"".join([chunk async for chunk in tts.synthesize(text)])
        except Exception as exc:  # noqa: BLE001 - any failure only means this phrase is not cached yet
            log.warning("phrase_warm_failed", tts=tts.name, text=text[:40], error=str(exc))
            return False
        if not audio:
            return False
        self._memory[key] = audio
        self._absent.discard(key)
        self._store(key, audio)
        return True

    def _load(self, key: str) -> bytes | None:
        audio = self._memory.get(key)
        if audio is None and self.directory is not None and key not in self._absent:
            try:
                audio = (self.directory / f"{key}.ulaw").read_bytes()
            except OSError:
                self._absent.add(key)
                return None
            self._memory[key] = audio
        return audio

    def _store(self, key: str, audio: bytes) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f"{key}.{os.getpid()}.tmp"
            tmp.write_bytes(audio)
            tmp.replace(self.directory / f"{key}.ulaw")  # atomic: a reader never sees half a file
        except OSError as exc:
            log.warning("phrase_store_failed", directory=str(self.directory), error=str(exc))
