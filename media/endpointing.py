"""Is the caller done? A German end-of-turn judge over the words heard so far, for every pause.

Silence alone cannot tell "Die Vertragsnummer ist … zwölf dreiundvierzig" from a finished sentence: real
German callers pause for a second inside a turn (LiveKit's eot-bench: half of German turns hold a pause of
300 ms or more). The last words usually can: German marks an unfinished sentence with closed-class words
(an article, a preposition, a conjunction, a finite auxiliary before the rest of its verb phrase), a
filler, or a number dictation that has not reached its length. These are rules over small word sets,
so a verdict costs a few microseconds, needs no network and no model, and always comes with its reason,
which the session logs and the console shows.

The judge only says how sure it is; how long to wait for each verdict is turn-taking policy and lives in
``TurnConfig`` (``end_of_turn_complete_ms``, ``end_of_turn_unsure_ms``, ``end_of_turn_hold_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from media.german_words import (
    ANNOUNCERS,
    ARTICLES,
    AUXILIARIES,
    CONJUNCTIONS,
    FILLERS,
    GREETINGS,
    INTERROGATIVES,
    MONTHS,
    NUMBER_CUES,
    OBJECT_PRONOUNS,
    ONE_WORD_ANSWERS,
    PARTICLE_PREPOSITIONS,
    PREPOSITIONS,
    SUBORDINATORS,
    digits_of,
    ordinal_value,
    raw_words,
    word_set,
    words,
)

__all__ = ["Completion", "JudgeConfig", "Verdict", "judge_turn"]


class Completion(StrEnum):
    COMPLETE = "complete"
    """A whole German utterance: answer after a short pause."""
    INCOMPLETE = "incomplete"
    """Grammatically open: keep listening up to the maximum hold."""
    UNSURE = "unsure"
    """Could be either ("Ich rufe an", a meter reading of unknown length): wait a medium pause."""
    STATEMENT = "statement"
    """A whole statement, often only the topic ("Ich möchte einen Umzug melden." … "Was muss ich tun?"):
    the classic end-of-turn silence, neither early nor held."""


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Completion
    reason: str
    """Why, in a few English words with the deciding word quoted: shown in the console and the log."""


_DATE_PREPOSITIONS: Final = word_set("am vom zum bis ab seit den dem der ist")
_SHORT_ANSWER_EXTRA: Final = word_set("schön vielen dank das wars war alles")
_PHONE: Final = "phone number"
_IDENTIFIERS: Final = frozenset(
    {"customer number", "contract number", "meter number", "invoice number", "account number"}
)
"""Numbers that identify something and are never only a few digits (unlike a meter reading)."""
_COPULA: Final = word_set("ist sind bin bist seid war waren wäre wären")
"""Copula + particle closes a clause ("Der Strom ist weg"); "habe"/"möchte" + "zu" leaves it open."""


@dataclass(frozen=True)
class JudgeConfig:
    """What the business knows about its numbers: a dictation is finished once it has this many digits."""

    number_digits: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"iban": 20, "postleitzahl": 5, "plz": 5})
    )
    """Cue word → digits of a whole number ("iban" 20: DE + 20 digits). A utility adds its customer and
    contract number formats here; a cue without a length is judged ``unsure`` once digits arrive."""
    phone_min_digits: int = 10
    """German phone numbers with area code have 10-12 digits: fewer is an open dictation."""
    identifier_min_digits: int = 6
    """A customer, contract, meter, invoice or account number of unknown length: fewer digits than this is
    an open dictation. Callers read such numbers in groups with a second's pause between them, and ending
    the turn inside the number cuts them off, while holding a finished one costs under a second."""


DEFAULT_JUDGE: Final = JudgeConfig()


def judge_turn(text: str, config: JudgeConfig = DEFAULT_JUDGE) -> Verdict:
    """Judges the transcript of the current turn so far (all its parts, joined) at a pause."""
    tokens = words(text)
    if not tokens:
        return Verdict(Completion.UNSURE, "no words")
    last = tokens[-1]
    before = tokens[-2] if len(tokens) > 1 else ""
    if last in FILLERS:
        return Verdict(Completion.INCOMPLETE, f"filler '{last}'")
    if all(t in GREETINGS for t in tokens):
        return Verdict(Completion.UNSURE, "greeting only, the request usually follows")
    if all(t in ONE_WORD_ANSWERS or t in _SHORT_ANSWER_EXTRA for t in tokens):
        what = "one-word answer" if len(tokens) == 1 else "short answer"
        return Verdict(Completion.COMPLETE, f"{what} '{text.strip()}'")
    dictation = _dictation(tokens, config)
    if dictation is not None:
        return dictation
    if text.rstrip().endswith("?") and last not in ARTICLES | PREPOSITIONS | CONJUNCTIONS:
        return Verdict(Completion.COMPLETE, "question mark")
    if last in ARTICLES:
        return Verdict(Completion.INCOMPLETE, f"ends on article '{last}'")
    if last in PREPOSITIONS:
        return Verdict(Completion.INCOMPLETE, f"ends on preposition '{last}'")
    if last in PARTICLE_PREPOSITIONS:
        if before in ARTICLES or before in PREPOSITIONS or before in CONJUNCTIONS:
            return Verdict(Completion.INCOMPLETE, f"ends on preposition '{last}'")
        finite = next((t for t in tokens[:3] if t in AUXILIARIES), None)
        if finite is not None and finite not in _COPULA:
            return Verdict(
                Completion.INCOMPLETE, f"ends on preposition '{last}' ('{finite}' takes no particle)"
            )
        raw = raw_words(text)
        nouns = any(w[:1].isupper() and w.lower() not in OBJECT_PRONOUNS for w in raw[1:-1])
        objects = any(t in OBJECT_PRONOUNS for t in tokens[1:-1])
        if nouns or objects or before in AUXILIARIES:
            return Verdict(Completion.COMPLETE, f"verb particle '{last}' closes the clause")
        return Verdict(Completion.UNSURE, f"'{last}' may be a verb particle")
    if last in CONJUNCTIONS:
        return Verdict(Completion.INCOMPLETE, f"ends on conjunction '{last}'")
    if last in INTERROGATIVES:
        if len(tokens) <= 2:
            return Verdict(Completion.COMPLETE, f"short question '{text.strip()}'")
        return Verdict(Completion.INCOMPLETE, f"ends on '{last}', a clause should follow")
    if last in ANNOUNCERS and (last != "beispiel" or before == "zum"):
        return Verdict(Completion.INCOMPLETE, f"announces more: '{last}'")
    if last in ("gern", "gerne") and before in AUXILIARIES:
        return Verdict(Completion.INCOMPLETE, f"'{before} {last}' needs an object")
    if last in AUXILIARIES:
        if any(t in SUBORDINATORS for t in tokens[:-2]):
            return Verdict(Completion.COMPLETE, f"verb-final clause ends on '{last}'")
        return Verdict(Completion.INCOMPLETE, f"ends on verb '{last}', the rest of the clause is missing")
    if text.rstrip().endswith(("...", "…")):
        return Verdict(Completion.UNSURE, "transcript trails off")
    if len(tokens) <= 2:
        return Verdict(Completion.COMPLETE, f"no open ending ('{last}')")
    # A whole statement is often only the topic: "Ich möchte einen Umzug melden. … Was muss ich tun?" pauses
    # longer than the complete-silence after its first sentence. Answering there cut the question off (it
    # then arrived over the bot's first words, too short to interrupt, and was lost), so a statement waits
    # the classic end-of-turn silence; questions and short answers are the early cues.
    return Verdict(Completion.STATEMENT, f"statement, a question may follow ('{last}')")


def _dictation(tokens: list[str], config: JudgeConfig) -> Verdict | None:
    """Verdict for a turn that ends on numbers (a dictation or a date), None if it does not."""
    run = 0
    digits = 0
    for token in reversed(tokens):
        count = digits_of(token)
        if count is None:
            break
        run += 1
        digits += count
    last = tokens[-1]
    if run == 0:
        return _date(tokens) if ordinal_value(last) is not None or last in MONTHS else None
    cue = next((t for t in reversed(tokens[: len(tokens) - run]) if t in NUMBER_CUES), None)
    if cue is None:
        if len(tokens) > run and tokens[-run - 1] in MONTHS:
            return Verdict(Completion.COMPLETE, "date with year")
        return Verdict(Completion.UNSURE, f"ends on a number ({digits} digits), may go on")
    what = NUMBER_CUES[cue]
    if what == "date":
        return _date(tokens)
    expected = config.number_digits.get(cue)
    if expected is not None:
        if digits < expected:
            return Verdict(Completion.INCOMPLETE, f"open {what} dictation: {digits} of {expected} digits")
        return Verdict(Completion.COMPLETE, f"{what} complete: {digits} digits")
    if what == _PHONE and digits < config.phone_min_digits:
        return Verdict(Completion.INCOMPLETE, f"open {what} dictation: {digits} digits")
    if what in _IDENTIFIERS and digits < config.identifier_min_digits:
        return Verdict(Completion.INCOMPLETE, f"open {what} dictation: {digits} digits, length unknown")
    return Verdict(Completion.UNSURE, f"{what} dictation of {digits} digits, length unknown")


def _date(tokens: list[str]) -> Verdict | None:
    last = tokens[-1]
    if last in MONTHS:
        return Verdict(Completion.COMPLETE, f"date ends on month '{last}'")
    before = tokens[-2] if len(tokens) > 1 else ""
    if ordinal_value(before) is not None:
        if "geburtsdatum" in tokens:
            return Verdict(Completion.INCOMPLETE, "birth date without year")
        return Verdict(Completion.COMPLETE, "date with day and month")
    if before in _DATE_PREPOSITIONS:
        return Verdict(Completion.UNSURE, f"date '{before} {last}' without month")
    return None
