"""Cuts a streamed German LLM reply into sentences, so TTS can start on the first while the rest is written.

A sentence sent too early is read with the wrong melody ("z." … "B."), one sent too late costs the caller
silence. German makes the period ambiguous: abbreviations ("z. B.", "Dr.", "Nr.", "ca."), ordinals ("am 24.
November"), thousands ("1.000") and dates ("24.11.2026"). The rules, in order:

- ``!`` and ``?`` end a sentence once whitespace follows.
- ``.`` and ``…`` end a sentence only when whitespace follows (so "1.000", "24.11.2026" and "z.B." never do)
  and the next word is known: a lower-case next word means it went on; a known abbreviation or a single
  letter before the period is no end; a number before it followed by a month name is an ordinal date.
- ``:`` never ends a sentence ("14:30 Uhr").
- Until the first sentence is out, a long first clause is sent at a comma, which halves time-to-first-audio
  on long openings ("Vielen Dank für Ihren Anruf bei den Stadtwerken Musterstadt, …").
- A run-on longer than ``max_chars`` is cut at its last comma or space, so TTS requests stay bounded.

With ``first_clause_words`` set, the first piece goes out sooner still (``first_clause_end``): at the first
comma after two words, or once that many words are complete, at a word boundary where TTS melody survives
the cut. Never after a word with a digit ("14:30 | Uhr", "am 3. | Mai", "1.000 | Euro"), a word ending in a
period ("z. | B.", "Dr. | Müller", "ca. | zehn") or a function word ("mit | Ihnen"); the rest of the reply
then goes out sentence by sentence as before.
"""

from __future__ import annotations

import re
from typing import Final

_ABBREVIATED = """
    z.b u.a d.h o.ä u.ä u.u s.o s.u v.a i.d.r z.t z.hd bzw ca dr prof nr str hr fr frl tel usw vgl ggf evtl
    inkl zzgl exkl abs bzgl ff geb gem jh jr max min mio mrd mind sog std tsd urspr vs etc
    jan feb mär apr jun jul aug sep sept okt nov dez mo di mi do sa st hbf
"""
ABBREVIATIONS: Final = frozenset(_ABBREVIATED.split())
"""Lower-case, without the final period: a word like these before "." does not end a sentence."""

_MONTH_NAMES = "januar februar märz april mai juni juli august september oktober november dezember"
MONTHS: Final = frozenset(_MONTH_NAMES.split())

_FUNCTION_WORDS = """
    der die das den dem des ein eine einen einem einer eines kein keine keinen keinem keiner
    zu zum zur am im in an auf aus bei beim bis durch für gegen mit nach ohne seit um unter über vom von vor
    und oder aber sondern denn dass weil wenn ob als wie sowie bzw sehr ganz noch schon nicht
    ihr ihre ihren ihrem ihrer ihres unser unsere unseren unserem unserer mein meine dein sein seine
"""
FUNCTION_WORDS: Final = frozenset(_FUNCTION_WORDS.split())
"""Lower-case words a first clause never ends on: they lean on the word after them."""

MIN_CLAUSE_WORDS: Final = 2
"""A first clause at a comma has at least this many words ("Ja," alone waits for its sentence)."""

_WORD = re.compile(r"\S+")
_TERMINATORS: Final = ".!?…"
_CLOSERS: Final = "\"'»«)]“”’"
_OPENERS: Final = "\"'»«([„“‚"


class SentenceSplitter:
    """Feed text deltas with ``push``; take the rest with ``flush`` when the stream ends."""

    def __init__(
        self, *, first_clause_chars: int = 40, max_chars: int = 250, first_clause_words: int = 0
    ) -> None:
        self.first_clause_chars = first_clause_chars
        self.max_chars = max_chars
        self.first_clause_words = first_clause_words
        """0: the first piece is a sentence (or a long clause at a comma); else see ``first_clause_end``."""
        self._buf = ""
        self._emitted = False

    def push(self, delta: str) -> list[str]:
        self._buf += delta
        return self._drain(final=False)

    def flush(self) -> list[str]:
        out = self._drain(final=True)
        rest = self._buf.strip()
        self._buf = ""
        self._emitted = False
        return [*out, rest] if rest else out

    def _drain(self, *, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            cut = find_sentence_end(self._buf, final=final)
            if cut is None and not self._emitted:
                cut = self._early_comma()
            if cut is None and len(self._buf) > self.max_chars:
                cut = self._forced_cut()
            if cut is None:
                return out
            sentence, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if sentence:
                out.append(sentence)
                self._emitted = True

    def _early_comma(self) -> int | None:
        if self.first_clause_words:
            return first_clause_end(self._buf, max_words=self.first_clause_words)
        at = self._buf.find(", ", self.first_clause_chars)
        return at + 1 if at >= 0 else None

    def _forced_cut(self) -> int:
        head = self._buf[: self.max_chars]
        at = head.rfind(", ")
        if at > 0:
            return at + 1
        at = head.rfind(" ")
        return at if at > 0 else self.max_chars


def find_sentence_end(text: str, *, final: bool = False) -> int | None:
    """Index just past the first complete sentence (its closing quotes included), or None if undecided.

    ``final`` means no more text will come, so a period at the very end may be judged now.
    """
    i = 0
    while i < len(text):
        if text[i] not in _TERMINATORS:
            i += 1
            continue
        end = i
        while end < len(text) and (text[end] in _TERMINATORS or text[end] in _CLOSERS):
            end += 1
        if end == len(text):
            return None  # the punctuation may go on ("…", "?!", a closing quote) or a word may follow
        if not text[end].isspace():
            i = end  # "1.000", "24.11.2026", "z.B.", "www.example.de"
            continue
        nxt = end
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        if "." not in text[i:end] and "…" not in text[i:end]:
            return end  # "!" or "?" with no period in the run
        if nxt == len(text):
            if final:
                return end
            return None  # the next word decides
        before, after = _word_before(text, i), _word_at(text, nxt)
        if before.isdigit() and nxt + len(after) == len(text) and not final:
            return None  # "am 3. Okt…": only the whole next word tells an ordinal date from an end
        if _continues(before, after):
            i = end
            continue
        return end
    return None


def first_clause_end(text: str, *, max_words: int = 6) -> int | None:
    """Index just past the first speakable clause of ``text``, or None while there is none yet.

    Only complete words count (whitespace after them), so "14:30" is never judged before "Uhr" shows.
    """
    words = [m for m in _WORD.finditer(text) if m.end() < len(text)]
    for n, word in enumerate(words, start=1):
        token = word.group()
        if token.endswith(",") and n >= MIN_CLAUSE_WORDS:
            return word.end()
        if n >= max_words and n < len(words) and _may_end_clause(token):
            return word.end()
    return None


def _may_end_clause(token: str) -> bool:
    bare = token.lstrip(_OPENERS)
    if not bare or bare.endswith(".") or any(c.isdigit() for c in bare):
        return False
    return bare.rstrip(_CLOSERS).lower() not in FUNCTION_WORDS


def _word_before(text: str, index: int) -> str:
    start = index
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:index].lstrip(_OPENERS)


def _word_at(text: str, index: int) -> str:
    end = index
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[index:end].lstrip(_OPENERS)


def _continues(before: str, after: str) -> bool:
    """True if the period between ``before`` and ``after`` is inside a sentence."""
    if not after or after[0].islower():
        return True
    low = before.lower().rstrip(".")
    if low in ABBREVIATIONS or (len(low) == 1 and low.isalpha()):
        return True
    word = after.lower().rstrip(".,;:!?")
    return before.isdigit() and (word in MONTHS or word.isdigit())
