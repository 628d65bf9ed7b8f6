"""Is speech over the bot's voice a backchannel or an interruption? German words decide, in microseconds.

A listener's "ja", "mhm" or "genau" says "go on"; anything else over the bot ("Stopp", "Moment", "Nein",
"Entschuldigung, …", or a question) wants the floor. The backchannels form a small closed set, so the rule
is a set lookup: every word a backchannel means backchannel; one word outside the set means interruption.
Transcribers spell hums many ways ("Mhm", "Mm-hmm", "Hm.", "Aha"), so the set lists the spellings seen.
Noise without words is no verdict: the detector's duration rule decides, as it does for unheard speech.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from media.german_words import word_set

BACKCHANNEL_WORDS: Final = word_set(
    "ja jaja jap jo jawohl mhm mhmm mmhm mhhm hm hmm mm mmm hmhm aha achso ach so genau okay ok okey "
    "richtig stimmt klar alles gut schön prima super verstehe verstanden sicher natürlich eben "
    "ordnung in"
)
"""Words of "go on": the issue's list (ja, jaja, mhm, hm, genau, okay, richtig, stimmt, klar, alles klar,
aha), the spellings transcribers give them, and "ach so", "in Ordnung", "gut", "verstehe". "in" and "alles"
are only backchannel words next to others of the set ("in Ordnung", "alles klar"): alone, see below."""

NOT_ALONE: Final = word_set("in alles so ach sicher eben")
"""Set members that are no backchannel as a single word ("in", "alles", "so" start sentences)."""

STOP_WORDS: Final = word_set(
    "stopp stop halt moment warten warte wart nein nee nö entschuldigung entschuldigen sorry pardon aber "
    "hallo"
)
"""Words that claim the floor whatever follows: named in the verdict's reason for the log."""

MAX_BACKCHANNEL_WORDS = 4
""""ja ja genau, ja" is still a listener; five words over the bot are a sentence."""

_WORD = re.compile(r"[a-zäöüß]+")
_HUM = re.compile(r"^(m+h*m+|h+m+|m+-?h+m+)$")


class Overlap(StrEnum):
    BACKCHANNEL = "backchannel"
    INTERRUPTION = "interruption"


@dataclass(frozen=True, slots=True)
class OverlapVerdict:
    kind: Overlap
    reason: str
    claims_floor: bool = False
    """A stop word ("Stopp", "Moment", "Nein"): the caller wants the bot to stop, not to add to their turn."""


def overlap_words(text: str) -> list[str]:
    """Lower-case words; hyphenated hums ("Mm-hmm") count as one hum."""
    words = _WORD.findall(text.lower().replace("-", ""))
    return ["mhm" if _HUM.match(w) else w for w in words]


def judge_overlap(text: str) -> OverlapVerdict | None:
    """The verdict on the words a caller spoke over the bot; None when there are no words to judge."""
    words = overlap_words(text)
    if not words:
        return None
    stop = next((w for w in words if w in STOP_WORDS), None)
    if stop is not None:
        return OverlapVerdict(Overlap.INTERRUPTION, f'"{stop}" claims the floor', claims_floor=True)
    other = next((w for w in words if w not in BACKCHANNEL_WORDS), None)
    if other is not None:
        return OverlapVerdict(Overlap.INTERRUPTION, f'content: "{other}"')
    if len(words) > MAX_BACKCHANNEL_WORDS:
        return OverlapVerdict(Overlap.INTERRUPTION, f"{len(words)} words")
    if len(words) == 1 and words[0] in NOT_ALONE:
        return OverlapVerdict(Overlap.INTERRUPTION, f'"{words[0]}" alone starts a sentence')
    return OverlapVerdict(Overlap.BACKCHANNEL, f'"{" ".join(words)}"')
