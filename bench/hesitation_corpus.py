"""A German hesitation corpus: customer-service turns with pauses where callers make them, as telephone audio.

eSpeak never hesitates, so the pauses are put in by hand between separately rendered parts: after "ist",
a preposition or a conjunction, after "ähm"/"also", between the digit groups of a dictation. Their lengths
(200-1,500 ms) are chosen so that silence alone reproduces the real German figures of LiveKit's eot-bench
(about half the turns cut off at 300 ms of silence, a fifth at 600 ms, one in twenty at 1.1 s); the
benchmark prints what silence alone gives on this corpus, so the claim is checked on every run.

Audio is rendered offline with eSpeak NG in three voices and speeds and cached under the system's temp
directory (never in git): eSpeak renders the same text slightly differently on every call, and a cache
makes two runs compare the same audio.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media.codec import array_to_ulaw, ulaw_to_array
from media.espeak import synthesize_pcm16

Part = str | int
"""A piece of text to speak, or a pause in milliseconds."""

CORPUS: tuple[tuple[str, tuple[Part, ...]], ...] = (
    # customer numbers, meter readings, IBAN and phone numbers dictated in groups
    ("dictation", ("Meine Kundennummer ist", 600, "vier sieben eins eins", 450, "null acht drei zwei.")),
    ("dictation", ("Die Vertragsnummer ist", 900, "zwölf dreiundvierzig", 500, "sechsundfünfzig achtzehn.")),
    ("dictation", ("Der Zählerstand ist", 400, "vier fünf sechs", 350, "sieben acht.")),
    ("dictation", ("Die Zählernummer lautet", 300, "eins zwei drei", 550, "vier fünf sechs.")),
    ("dictation", ("Meine Telefonnummer ist null eins sieben eins", 500, "zwei drei vier", 400,
                   "fünf sechs sieben acht.")),
    ("dictation", ("Die IBAN lautet DE89", 500, "3704 0044", 600, "0532 0130 00.")),
    ("dictation", ("Die Nummer von meinem Zähler ist", 550, "drei drei vier eins.")),
    # dates
    ("date", ("Ich bin am", 500, "zwölften März umgezogen.")),
    ("date", ("Der Vertrag läuft seit dem", 500, "ersten Januar.")),
    ("date", ("Mein Geburtsdatum ist der", 400, "dritte vierte", 300, "neunzehnhundertachtzig.")),
    ("date", ("Können wir den Termin auf den", 300, "fünfzehnten Mai verschieben?")),
    # turns that start with a filler
    ("filler", ("Ähm", 800, "ich habe eine Frage zu meiner Rechnung.")),
    ("filler", ("Also", 600, "ich wollte meinen Zählerstand durchgeben.")),
    ("filler", ("Ähm, also", 1300, "es geht um meine Abschlagszahlung.")),
    ("filler", ("Also, ähm", 400, "wann haben Sie morgen geöffnet?")),
    # breaks after a conjunction, a preposition or a verb
    ("break", ("Ich rufe an wegen", 700, "der Abschlagszahlung.")),
    ("break", ("Ich möchte gern mit", 1100, "einem Mitarbeiter sprechen.")),
    ("break", ("Ich wollte fragen, ob", 900, "ich meinen Abschlag senken kann.")),
    ("break", ("Die Rechnung ist zu hoch, weil", 600, "ich im Sommer gar nicht da war.")),
    ("break", ("Ich ziehe um und", 1500, "brauche einen neuen Vertrag.")),
    ("break", ("Ich habe eine Frage zu", 500, "meiner Jahresabrechnung.")),
    ("break", ("Es ist so, dass", 800, "mein Zähler kaputt ist.")),
    ("break", ("Ich hätte gern", 400, "eine Kopie der Rechnung.")),
    ("break", ("Können Sie mir sagen, wann", 600, "der Techniker kommt?")),
    ("break", ("Ich habe den Abschlag bezahlt, aber", 1000, "er wurde zweimal abgebucht.")),
    ("break", ("Ich brauche eine Bescheinigung für", 300, "das Finanzamt.")),
    ("break", ("Mein Problem ist", 1200, "dass die Heizung nicht geht.")),
    ("break", ("Ich wohne in der", 450, "Hauptstraße zwölf.")),
    # questions
    ("question", ("Wann haben Sie geöffnet?",)),
    ("question", ("Was kostet der Ökostrom pro Kilowattstunde?",)),
    ("question", ("Kann ich meinen Abschlag online ändern?",)),
    ("question", ("Wie lange dauert das?",)),
    ("question", ("Bekomme ich eine Gutschrift?",)),
    ("question", ("Die Heizung ist kalt,", 200, "können Sie jemanden schicken?")),
    # one-word and short answers
    ("answer", ("Ja.",)),
    ("answer", ("Nein, danke.",)),
    ("answer", ("Genau.",)),
    ("answer", ("Nein.",)),
    ("answer", ("Ja, bitte.",)),
    ("answer", ("Vielen Dank, das war alles.",)),
    # a complete first part, then more: greetings, and the hard case a judge of words cannot see
    ("greeting", ("Hallo, guten Tag.", 400, "Ich möchte einen Umzug melden.")),
    ("greeting", ("Guten Tag.", 300, "Ich habe eine Frage zur Rechnung.")),
    ("afterthought", ("Ja, genau.", 250, "Und die Zählernummer habe ich auch.")),
    ("afterthought", ("Ich möchte meinen Zählerstand durchgeben.", 700, "Für den Stromzähler.")),
    ("afterthought", ("Das wäre alles.", 450, "Ach nein, noch eine Frage.")),
    # statements without a long pause
    ("statement", ("Ich möchte einen Zählerstand durchgeben.",)),
    ("statement", ("Mein Strom ist seit heute Morgen weg.",)),
    ("statement", ("Bitte schicken Sie mir die Rechnung noch einmal zu.",)),
    ("statement", ("Ich möchte meinen Abschlag erhöhen.",)),
    ("statement", ("Ich möchte mich über die Rechnung beschweren.",)),
    ("statement", ("Ich habe gestern angerufen,", 250, "aber niemand hat sich gemeldet.")),
    ("statement", ("Mein Name ist Müller,", 200, "und ich rufe wegen meines Umzugs an.")),
)  # fmt: skip

VOICES = (("de", 160, 50), ("de+f3", 150, 60), ("de+m3", 175, 40))
"""eSpeak NG voice variant, words per minute, pitch: three speakers, cycled through the corpus."""
LEAD_MS = 400
TAIL_MS = 2500
NOISE_DB = -55.0


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    end_ms: int
    """Where the word ends in the turn's audio, estimated from its position in the part's characters."""


@dataclass(frozen=True, slots=True)
class Turn:
    category: str
    ulaw: bytes
    words: tuple[Word, ...]
    end_ms: int
    """Where the caller really stops speaking: the end of the last part."""
    pauses_ms: tuple[int, ...]

    def words_until(self, ms: int) -> str:
        """What a transcriber returns for the audio up to ``ms``: the words that have ended by then."""
        return " ".join(w.text for w in self.words if w.end_ms <= ms)


def cache_dir() -> Path:
    path = Path(os.environ.get("VOICEBOT_BENCH_CACHE", Path(tempfile.gettempdir()) / "voicebot-bench-audio"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def render(text: str, voice: tuple[str, int, int]) -> np.ndarray:
    """PCM of ``text`` (float64, 8 kHz), trimmed to its first and last 10 ms above -45 dBFS, at -20 dBFS."""
    name, wpm, pitch = voice
    key = hashlib.sha256(f"{text}|{name}|{wpm}|{pitch}".encode()).hexdigest()[:24]
    file = cache_dir() / f"{key}.ulaw"
    if not file.exists():
        pcm = np.frombuffer(synthesize_pcm16(text, name, wpm, pitch), dtype="<i2").astype(np.float64)
        windows = pcm[: len(pcm) // 80 * 80].reshape(-1, 80)
        levels = 20 * np.log10(np.maximum(np.sqrt(np.mean(np.square(windows), axis=1)), 1e-9) / 32768)
        active = np.flatnonzero(levels > -45.0)
        pcm = pcm[int(active[0]) * 80 : int(active[-1] + 1) * 80]
        rms = float(np.sqrt(np.mean(np.square(pcm))))
        pcm = pcm * (32768 * 10 ** (-20 / 20) / max(rms, 1e-9))
        file.write_bytes(array_to_ulaw(np.clip(np.round(pcm), -32768, 32767).astype(np.int16)))
    return ulaw_to_array(file.read_bytes()).astype(np.float64)


def build_turn(category: str, parts: tuple[Part, ...], voice: tuple[str, int, int], seed: int = 0) -> Turn:
    pieces: list[np.ndarray] = [np.zeros(LEAD_MS * 8)]
    placed: list[Word] = []
    at = LEAD_MS * 8
    pauses: list[int] = []
    for part in parts:
        if isinstance(part, int):
            pauses.append(part)
            pieces.append(np.zeros(part * 8))
            at += part * 8
            continue
        audio = render(part, voice)
        tokens = list(re.finditer(r"\S+", part))
        for m in tokens:
            placed.append(Word(m.group(), (at + len(audio) * m.end() // len(part)) // 8))
        pieces.append(audio)
        at += len(audio)
    end_ms = at // 8
    pieces.append(np.zeros(TAIL_MS * 8))
    audio = np.concatenate(pieces)
    rng = np.random.default_rng(seed)
    audio = audio + rng.standard_normal(len(audio)) * 32768 * 10 ** (NOISE_DB / 20)
    usable = len(audio) // 160 * 160
    ulaw = array_to_ulaw(np.clip(np.round(audio[:usable]), -32768, 32767).astype(np.int16))
    return Turn(category, ulaw, tuple(placed), end_ms, tuple(pauses))


def build_corpus(limit: int | None = None) -> list[Turn]:
    chosen = CORPUS if limit is None else CORPUS[:limit]
    return [build_turn(cat, parts, VOICES[i % len(VOICES)], seed=i) for i, (cat, parts) in enumerate(chosen)]
