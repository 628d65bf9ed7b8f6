"""A language model without a model: keyword answers from the business profile.

It lets a call be held end to end with no cloud account (demo, CI, an outage of the LLM provider), and it is
deterministic, which makes it the LLM of choice for tests of everything around the LLM. It speaks the same
contract as the real one: streamed text deltas, and tool calls for hanging up and handing over. For those
two it emits only the tool call; the call session speaks the catalogue's goodbye or handover phrase.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from difflib import SequenceMatcher
from typing import Final

from dialogue.llm import Message, ReplyPart, TextDelta, ToolCall, ToolSpec
from dialogue.profile import BusinessProfile

GOODBYE_WORDS: Final = (
    "tschüss", "tschüs", "auf wiederhören", "auf wiedersehen", "wiederhören", "ciao", "das war's", "das wars",
    "das war alles", "schönen tag noch", "bye",
)  # fmt: skip
HUMAN_WORDS: Final = (
    "mitarbeiter", "mensch", "echte person", "einer person", "berater", "kollege", "kollegin",
    "jemanden sprechen", "sachbearbeiter",
)  # fmt: skip
GREETING_WORDS: Final = ("hallo", "guten tag", "guten morgen", "guten abend", "moin", "grüß gott", "servus")
THANKS_WORDS: Final = ("danke", "vielen dank", "dankeschön")


class ScriptedLanguageModel:
    name = "scripted"

    def __init__(self, profile: BusinessProfile) -> None:
        self.profile = profile

    async def stream_reply(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        said = _normalise(next((m.content for m in reversed(messages) if m.role == "user"), ""))
        allowed = {t.name for t in tools}

        def may_call(name: str) -> bool:
            return not tools or name in allowed

        if _has_any(said, GOODBYE_WORDS) and may_call("end_call"):
            yield ToolCall(id=_call_id(), name="end_call", arguments={})
            return
        if _has_any(said, HUMAN_WORDS) and may_call("transfer_to_human"):
            yield ToolCall(id=_call_id(), name="transfer_to_human", arguments={})
            return
        for piece in _pieces(self.answer(said)):
            yield TextDelta(piece)

    @staticmethod
    def normalise(text: str) -> str:
        return _normalise(text)

    def answer(self, said: str) -> str:
        """The reply text for an already normalised utterance."""
        if not said:
            return "Entschuldigung, ich habe nichts verstanden. Was kann ich für Sie tun?"
        best, best_score = None, 0.0
        heard = said.split()
        for faq in self.profile.faqs:
            score = faq_score(faq.keywords, heard)
            if score > best_score:
                best, best_score = faq, score
        if best is not None:
            return best.answer
        if _has_any(said, THANKS_WORDS):
            return "Sehr gern. Kann ich sonst noch etwas für Sie tun?"
        if _has_any(said, GREETING_WORDS) and len(said.split()) <= 4:
            return "Guten Tag! Wie kann ich Ihnen helfen?"
        # Three topics, not five: the longer list took 10.8 s in eSpeak, and a caller who was misheard asks
        # again long before it ends (the question then competes with the bot's voice).
        topics = [faq.topic for faq in self.profile.faqs if faq.topic][:3]
        if not topics:
            return "Dazu kann ich Ihnen leider nichts sagen. Soll ich Sie mit einem Mitarbeiter verbinden?"
        listed = ", ".join(topics[:-1]) + f" oder {topics[-1]}" if len(topics) > 1 else topics[0]
        return (
            f"Dazu kann ich leider nichts sagen. Ich helfe bei {listed}, "
            "oder ich verbinde Sie mit einem Mitarbeiter."
        )


FUZZY_MIN_LENGTH: Final = 5
"""Keywords shorter than this must be heard exactly: "rate" and "offen" have too many near neighbours."""

FUZZY_MIN_RATIO: Final = 0.8
"""Similarity at which a misheard word still counts ("Zählerstand" heard as "Zähle standen")."""


def faq_score(keywords: Sequence[str], heard: Sequence[str]) -> float:
    """How strongly the words ``heard`` ask for the entry with ``keywords``: the sum of its keywords' scores,
    each heard word counted for one keyword only.

    Without that rule one misheard word scored for every near neighbour: "Zählerstand melden" went to the
    move entry, whose "ummelden" and "abmelden" both nearly matched "melden" (6.9 + 6.9 > 11).
    """
    matches = sorted((keyword_match(_normalise(k), heard) for k in keywords), reverse=True)
    taken: set[int] = set()
    score = 0.0
    for value, start, end in matches:
        if value <= 0:
            break
        span = set(range(start, end))
        if not span & taken:
            taken |= span
            score += value
    return score


def keyword_score(keyword: str, heard: Sequence[str]) -> float:
    """How strongly ``heard`` contains ``keyword``: its length if exact, less if misheard, else 0."""
    return keyword_match(keyword, heard)[0]


def keyword_match(keyword: str, heard: Sequence[str]) -> tuple[float, int, int]:
    """The score of ``keyword`` in the words ``heard``, and the span of heard words it took (start, end).

    Local speech recognition on a phone line mishears single letters and splits or joins compounds, so a
    keyword also counts when it begins a heard word ("öffnungszeiten"), or when a run of as many heard
    words as it has (joined without spaces) is nearly the same string.
    """
    size = len(keyword.split())
    best = (0.0, 0, 0)
    for i in range(len(heard) - size + 1):
        window = " ".join(heard[i : i + size])
        if window.startswith(keyword) or (len(keyword) >= FUZZY_MIN_LENGTH and keyword in window):
            return float(len(keyword)), i, i + size
        if len(keyword) < FUZZY_MIN_LENGTH:
            continue
        candidates = (
            (window, size),
            (window.replace(" ", ""), size),
            ("".join(heard[i : i + size + 1]), size + 1),
        )
        for candidate, taken in candidates:
            ratio = SequenceMatcher(None, keyword.replace(" ", ""), candidate[: len(keyword) + 2]).ratio()
            if ratio >= FUZZY_MIN_RATIO and len(keyword) * ratio > best[0]:
                best = (len(keyword) * ratio, i, min(i + taken, len(heard)))
    return best


def _normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: what keyword matching needs from STT output."""
    text = text.lower().replace("’", "'")
    return " ".join(re.sub(r"[^\w'äöüß]+", " ", text).split())


def _has_any(said: str, words: Sequence[str]) -> bool:
    padded = f" {said} "
    return any(f" {w}" in padded for w in words)


def _pieces(text: str) -> list[str]:
    """Word-sized deltas, so consumers see a stream as they would from a real model."""
    return re.findall(r"\s*\S+", text)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"
