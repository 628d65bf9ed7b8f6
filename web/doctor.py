"""``voicebot doctor``: one real request to each configured provider, one line per check.

``check`` reads the configuration; ``doctor`` proves it: a short packaged German clip through the
speech-to-text engine (and the expected words in the transcript), a one-line reply from the language model,
a phrase through text-to-speech in the telephone format, and the Twilio credentials with the number's
webhook. A failure says in one sentence what to do, so the first call is not where keys are found wrong.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files

from dialogue.llm import Message, TextDelta
from dialogue.llm_scripted import ScriptedLanguageModel, keyword_score
from media.errors import ProviderError, VoicebotError
from media.speech import Utterance
from web.connect import webhook_urls
from web.providers import Providers
from web.settings import Settings
from web.twilio_numbers import TwilioNumbers

CLIP_TEXT = "Ich möchte bitte meinen Zählerstand durchgeben."
CLIP_EXPECTED = ("zählerstand", "durchgeben")
"""The packaged clip (web/data/doctor_de.wav, eSpeak NG at 130 words a minute, 8 kHz): one of these must be
heard, exactly or nearly (the scripted FAQ's tolerance)."""

TTS_PHRASE = "Guten Tag, hier ist Ihr Kundenservice."


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    engine: str
    ok: bool
    ms: float
    verdict: str
    skipped: bool = False

    def line(self) -> str:
        mark = "skip" if self.skipped else "ok  " if self.ok else "FAIL"
        took = "" if self.skipped else f"{self.ms:6.0f} ms"
        return f"{mark} {self.name:<6} {self.engine:<30} {took:>9}  {self.verdict}"


def clip() -> Utterance:
    data = (files("web") / "data" / "doctor_de.wav").read_bytes()
    with wave.open(io.BytesIO(data)) as w:
        return Utterance(w.readframes(w.getnframes()), sample_rate=w.getframerate())


def fix_for(exc: BaseException, settings: Settings, role: str) -> str:
    """One sentence: what the operator should change."""
    key, base = {
        "stt": ("OPENAI_API_KEY", settings.openai_base_url or "the OpenAI API"),
        "llm": ("OPENAI_API_KEY", settings.openai_base_url or "the OpenAI API"),
        "tts": ("ELEVENLABS_API_KEY", settings.elevenlabs_base_url or "the ElevenLabs API"),
    }[role]
    if isinstance(exc, TimeoutError):
        return f"no answer in time from {base}: check the network or the base URL"
    if not isinstance(exc, ProviderError):
        return f"{type(exc).__name__}: {exc}"
    if exc.status in (401, 403):
        return f"wrong key (HTTP {exc.status}): check {key}"
    if exc.status == 429:
        return "quota or rate limit (HTTP 429): check the account's plan and billing, or wait and retry"
    if exc.status == 404 and role == "tts":
        return "voice or model not found (HTTP 404): set ELEVENLABS_VOICE_ID to a voice that speaks German"
    if exc.status == 404:
        return f"not found (HTTP 404): check the base URL ({base}) and the model name"
    if "connection failed" in exc.detail:
        return f"cannot reach {base}: check the base URL"
    if "timed out" in exc.detail or "nothing within" in exc.detail:
        return f"no answer in time from {base}: check the network or the base URL"
    return exc.detail


async def _timed(
    name: str, engine: str, timeout_s: float, body: Callable[[], Awaitable[tuple[bool, str]]],
    on_error: Callable[[BaseException], str],
) -> CheckResult:  # fmt: skip
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            ok, verdict = await body()
    except (TimeoutError, VoicebotError) as exc:
        ok, verdict = False, on_error(exc)
    return CheckResult(name, engine, ok, (time.perf_counter() - started) * 1000, verdict)


async def check_stt(p: Providers, settings: Settings, timeout_s: float) -> CheckResult:
    if p.stt is None:
        return CheckResult("stt", "missing", False, 0, "no speech-to-text: " + "; ".join(p.missing))
    stt = p.stt
    warm = getattr(stt, "warm", None)
    if warm is not None:  # loading a local model is not the request being timed
        await warm()

    async def body() -> tuple[bool, str]:
        heard = (await stt.transcribe(clip())).text
        words = ScriptedLanguageModel.normalise(heard).split()
        ok = any(keyword_score(w, words) > 0 for w in CLIP_EXPECTED)
        if ok:
            return True, f"heard {heard!r}"
        return (
            False,
            f"heard {heard!r}, expected {CLIP_TEXT!r}: wrong language or model (check the STT model)",
        )

    return await _timed("stt", stt.name, timeout_s, body, lambda e: fix_for(e, settings, "stt"))


async def check_llm(p: Providers, settings: Settings, timeout_s: float) -> CheckResult:
    if p.llm is None:
        return CheckResult("llm", "missing", False, 0, "no language model")
    llm = p.llm

    async def body() -> tuple[bool, str]:
        messages = [
            Message("system", "Antworten Sie in einem kurzen deutschen Satz."),
            Message("user", "Hallo, wann haben Sie geöffnet?"),
        ]
        text = "".join(
            [part.text async for part in llm.stream_reply(messages, []) if isinstance(part, TextDelta)]
        )
        if not text.strip():
            return False, "the reply was empty: check OPENAI_LLM_MODEL"
        return True, f"replied {text.strip()[:60]!r}"

    return await _timed("llm", llm.name, timeout_s, body, lambda e: fix_for(e, settings, "llm"))


async def check_tts(p: Providers, settings: Settings, timeout_s: float) -> CheckResult:
    if p.tts is None:
        return CheckResult("tts", "missing", False, 0, "no text-to-speech")
    tts = p.tts

    async def body() -> tuple[bool, str]:
        audio = b"".join([chunk async for chunk in tts.synthesize(TTS_PHRASE)])
        if not audio:
            return False, "no audio came back: check ELEVENLABS_VOICE_ID and ELEVENLABS_MODEL"
        return True, f"{len(audio) / 8000:.1f} s of ulaw_8000 audio"

    return await _timed("tts", tts.name, timeout_s, body, lambda e: fix_for(e, settings, "tts"))


async def check_twilio(settings: Settings, timeout_s: float) -> CheckResult:
    if not settings.twilio_account_sid or not settings.signatures_enabled:
        return CheckResult(
            "twilio", "-", True, 0, "not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)", skipped=True
        )
    numbers = TwilioNumbers(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        api_base_url=settings.twilio_api_base_url,
        timeout_s=timeout_s,
    )

    async def body() -> tuple[bool, str]:
        status = await numbers.account_status()
        if status != "active":
            return False, f"the Twilio account is {status}: see the Twilio console"
        number = await numbers.find(settings.twilio_phone_number)
        where = number.voice_url or "nowhere"
        if settings.public_url and number.voice_url != webhook_urls(settings.public_url)[0]:
            return False, f"{number.phone_number} sends calls to {where}: run `voicebot connect`"
        return True, f"{number.phone_number} sends calls to {where}"

    try:
        return await _timed("twilio", "twilio rest", timeout_s, body, lambda e: getattr(e, "detail", str(e)))
    finally:
        await numbers.aclose()


async def run_doctor(
    settings: Settings, providers: Providers, *, timeout_s: float = 15.0
) -> list[CheckResult]:
    """Every check in turn (not in parallel: the timings would measure each other)."""
    return [
        await check_stt(providers, settings, timeout_s),
        await check_llm(providers, settings, timeout_s),
        await check_tts(providers, settings, timeout_s),
        await check_twilio(settings, timeout_s),
    ]


def run_from_cli(settings: Settings, timeout_s: float) -> int:
    """Prints one line per check and the fixes; 0 when every configured check passed."""
    from web.providers import build_providers

    try:
        providers = build_providers(settings)
    except VoicebotError as exc:
        print(f"FAIL config: {exc.detail}", file=sys.stderr)
        return 2

    async def go() -> list[CheckResult]:
        try:
            return await run_doctor(settings, providers, timeout_s=timeout_s)
        finally:
            await providers.aclose()

    results = asyncio.run(go())
    for result in results:
        print(result.line())
    failed = [r for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)}/{len(results)} checks passed" + (": see FAIL lines" if failed else "")
    )
    return 1 if failed else 0
