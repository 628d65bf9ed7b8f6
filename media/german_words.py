"""Closed word classes and number words of German, as the end-of-turn judge needs them.

A sentence that stops on an article, a preposition, a conjunction or a filler is unfinished in German almost
whatever came before, and these classes are small and closed, so a few sets answer "can this be the last
word?" in microseconds without a model. Number words are parsed so that a dictation can be counted in
digits: "zwölf dreiundvierzig" is four digits of a customer number, not two words.
"""

from __future__ import annotations

import re
from typing import Final


def word_set(words: str) -> frozenset[str]:
    """A closed word class, written as the words separated by spaces."""
    return frozenset(words.split())


ARTICLES: Final = word_set(
    "der die den dem des ein eine einen einem einer eines kein keine keinen keinem keiner keines "
    "mein meine meinen meinem meiner meines dein deine ihre ihren ihrem ihrer ihres seine "
    "seinen seinem seiner seines unsere unseren unserem unserer jeder jede jeden jedem "
    "jedes welcher welchen welchem dieser diese diesen diesem dieses jene jenen"
)
"""Determiners that need a noun after them. Left out, as they end sentences as pronouns or verbs: "das",
"dies", "sein" ("Das kann sein"), "ihr", "unser", "welche"."""

PREPOSITIONS: Final = word_set(
    "mit von vom zum zur für bei beim im am ins ans in wegen seit bis ohne gegen trotz während "
    "unter hinter neben zwischen laut pro samt per gemäß bezüglich betreffend innerhalb außerhalb "
    "statt anstatt aufgrund"
)
"""Prepositions that cannot close a sentence as a verb particle."""

PARTICLE_PREPOSITIONS: Final = word_set("an ab auf aus durch vor nach um über zu zurück ein weg")
"""Prepositions that are also separable verb particles: "Ich rufe an." is whole, "Ich warte auf" is not."""

CONJUNCTIONS: Final = word_set(
    "und oder aber denn sondern sowie beziehungsweise bzw weil dass daß ob wenn falls als damit obwohl "
    "obgleich sodass nachdem bevor ehe sobald solange sofern indem wobei weshalb weswegen"
)
SUBORDINATORS: Final = word_set(
    "weil dass daß ob wenn falls als damit obwohl obgleich sodass nachdem bevor ehe sobald solange "
    "sofern indem wobei weshalb weswegen wie wann wo warum was welche welcher"
)
"""Words that open a verb-final clause: after them "ist", "habe" or "kann" may close the sentence."""

INTERROGATIVES: Final = word_set("wann wie wo was warum wieso weshalb woher wohin wer wen wem welche")

AUXILIARIES: Final = word_set(
    "ist sind bin bist seid war waren wäre wären habe hab hat haben hatte hatten hätte hätten wird werde "
    "werden würde würden kann können könnte könnten möchte möchten will wollte wollen muss müsste "
    "soll sollte darf dürfte lautet lauten heißt beträgt"
)
"""Finite auxiliaries, copula, modals, "lautet": ending a main clause, they leave the rest of it missing."""

FILLERS: Final = word_set("äh ähm öhm ähh ähmm ehm hmm also")
"""Hesitation sounds, and "also" at a turn's end. Not "halt" (also "Halt!") or "sozusagen"/"quasi",
which close many sentences."""

ANNOUNCERS: Final = word_set("zwar nämlich folgendes folgende folgendermaßen beispiel")
"""Words that promise what comes next: "und zwar", "nämlich", "zum Beispiel"."""

ONE_WORD_ANSWERS: Final = word_set(
    "ja nein nee jo jawohl genau okay ok mhm hm aha richtig stimmt klar gerne gern danke bitte tschüss "
    "tschüs wiederhören hallo doch korrekt exakt natürlich sicher gut prima super einverstanden"
)
"""Words that are a whole answer on their own (to a yes/no question, a greeting, a thank-you)."""

GREETINGS: Final = word_set("hallo guten tag morgen abend grüß gott moin servus")
"""A turn of greeting only: callers greet, pause, then say what they want."""

OBJECT_PRONOUNS: Final = word_set("mich mir dich dir sich uns euch ihn ihm es das ihnen sie")
"""Before a sentence-final particle they show the particle verb is complete: "rufen Sie mich an"."""

MONTHS: Final = word_set(
    "januar jänner februar märz april mai juni juli august september oktober november dezember"
)

NUMBER_CUES: Final = {
    "kundennummer": "customer number",
    "vertragsnummer": "contract number",
    "vertragskonto": "contract number",
    "zählernummer": "meter number",
    "rechnungsnummer": "invoice number",
    "zählerstand": "meter reading",
    "stand": "meter reading",
    "iban": "IBAN",
    "kontonummer": "account number",
    "telefonnummer": "phone number",
    "rufnummer": "phone number",
    "handynummer": "phone number",
    "mobilnummer": "phone number",
    "nummer": "number",
    "postleitzahl": "postcode",
    "plz": "postcode",
    "geburtsdatum": "date",
    "datum": "date",
}
"""Words after which digits are a dictation, and what is being dictated."""

_UNITS: Final = {
    "null": 0, "eins": 1, "ein": 1, "eine": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "fünf": 5,
    "sechs": 6, "sieben": 7, "acht": 8, "neun": 9,
}  # fmt: skip
_TEENS: Final = {
    "zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13, "vierzehn": 14, "fünfzehn": 15, "sechzehn": 16,
    "siebzehn": 17, "achtzehn": 18, "neunzehn": 19,
}  # fmt: skip
_TENS: Final = {
    "zwanzig": 20, "dreißig": 30, "vierzig": 40, "fünfzig": 50, "sechzig": 60, "siebzig": 70,
    "achtzig": 80, "neunzig": 90,
}  # fmt: skip
_ORDINAL_STEMS: Final = {"erst": 1, "dritt": 3, "siebt": 7, "siebent": 7, "acht": 8}
_IRREGULAR_ENDINGS: Final = frozenset(("e", "en", "er", "em", "es"))
_ORDINAL_ENDINGS: Final = frozenset(("te", "ten", "ter", "tem", "tes", "ste", "sten", "ster", "stem", "stes"))

_below_100 = "|".join(
    sorted([*(u for u in _UNITS if u != "eine"), *_TEENS], key=len, reverse=True)
)  # "ein" before "und": "einundzwanzig"
_tens = "|".join(_TENS)
_SMALL: Final = f"(?:(?:(?:{_below_100})und)?(?:{_tens})|{_below_100})"
_HUNDREDS: Final = f"(?:(?:{_SMALL})?hundert(?:{_SMALL})?|{_SMALL})"
_NUMBER_RE: Final = re.compile(f"(?:(?:{_HUNDREDS})?tausend(?:{_HUNDREDS})?|{_HUNDREDS})")
_TOKEN_RE: Final = re.compile(r"[\wäöüß]+", re.UNICODE)


def number_value(word: str) -> int | None:
    """The value of a German cardinal written as one word ("dreiundvierzig" → 43), or None."""
    w = word.lower()
    if w.isdigit():
        return int(w)
    if w == "ein" or not _NUMBER_RE.fullmatch(w):
        return None
    total = 0
    if "tausend" in w:
        head, w = w.split("tausend", 1)
        total += (_below_thousand(head) or 1) * 1000
    return total + _below_thousand(w)


def _below_thousand(w: str) -> int:
    value = 0
    if "hundert" in w:
        head, w = w.split("hundert", 1)
        value += (_below_hundred(head) or 1) * 100
    return value + _below_hundred(w)


def _below_hundred(w: str) -> int:
    if not w:
        return 0
    if w in _UNITS:
        return _UNITS[w]
    if w in _TEENS:
        return _TEENS[w]
    if w in _TENS:
        return _TENS[w]
    unit, _, tens = w.partition("und")
    return _UNITS.get(unit, 0) + _TENS.get(tens, 0)


def digits_of(word: str) -> int | None:
    """How many digits a dictated token stands for: "null" 1, "zwölf" 2, "zweihundert" 3, "4711" 4.

    Tokens with letters and digits ("DE89") count their digits; anything else is None.
    """
    if any(c.isdigit() for c in word):
        return sum(c.isdigit() for c in word)
    value = number_value(word)
    if value is None:
        return None
    return len(str(value))


def ordinal_value(word: str) -> int | None:
    """The value of a German ordinal in any ending ("zwölften" → 12, "ersten" → 1, "3." → 3), or None."""
    w = word.lower()
    if w.endswith(".") and w[:-1].isdigit():
        return int(w[:-1])
    for cut in range(len(w) - 1, 1, -1):
        stem, suffix = w[:cut], w[cut:]
        if stem in _ORDINAL_STEMS and suffix in _IRREGULAR_ENDINGS:
            return _ORDINAL_STEMS[stem]
        if suffix in _ORDINAL_ENDINGS:
            value = number_value(stem)
            if value:
                return value
    return None


def words(text: str) -> list[str]:
    """Lower-case word tokens; digits stay as they are ("DE89" → "de89")."""
    return [t.lower() for t in _TOKEN_RE.findall(text)]


def raw_words(text: str) -> list[str]:
    """Word tokens as written: transcripts capitalise German nouns, which tells a noun from a verb."""
    return _TOKEN_RE.findall(text)
