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
"""

from __future__ import annotations

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

_TERMINATORS: Final = ".!?…"
_CLOSERS: Final = "\"'»«)]“”’"
_OPENERS: Final = "\"'»«([„“‚"


class SentenceSplitter:
    """Feed text deltas with ``push``; take the rest with ``flush`` when the stream ends."""

    def __init__(self, *, first_clause_chars: int = 40, max_chars: int = 250) -> None:
        self.first_clause_chars = first_clause_chars
        self.max_chars = max_chars
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
