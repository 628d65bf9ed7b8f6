"""The business the bot answers for, read from a TOML file an operator can edit without touching code.

One file feeds everything company-specific: the greeting's company name, the facts in the LLM prompt, the
keyword answers of the scripted dialogue (which holds a call with no LLM at all), the transfer number and
the domain words that bias speech recognition towards the company's own vocabulary.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from media.errors import ConfigError

DEFAULT_PROFILE = "business_profile.toml"


@dataclass(frozen=True, slots=True)
class Faq:
    keywords: tuple[str, ...]
    """Lower-case fragments; one of them appearing in what the caller said selects the answer."""
    answer: str
    topic: str = ""
    """How the scripted dialogue names this subject when it lists what it can help with."""


@dataclass(frozen=True, slots=True)
class BusinessProfile:
    company_name: str
    opening_hours: str = ""
    transfer_number: str = ""
    domain_words: tuple[str, ...] = ()
    faqs: tuple[Faq, ...] = field(default=())

    def stt_prompt(self) -> str:
        """A short German text with the domain words: transcription models take it as a spelling hint."""
        if not self.domain_words:
            return ""
        return f"Anruf bei {self.company_name}. Themen: " + ", ".join(self.domain_words) + "."

    def facts(self) -> str:
        """What the LLM may tell callers, one fact per line, for the system prompt."""
        lines = [f"Öffnungszeiten: {self.opening_hours}."] if self.opening_hours else []
        lines += [faq.answer for faq in self.faqs]
        return "\n".join(lines)


def load_profile(path: Path | None = None) -> BusinessProfile:
    """The profile at ``path``, or the shipped default; a broken file is a ``ConfigError`` saying why."""
    origin = str(path) if path is not None else f"dialogue/data/{DEFAULT_PROFILE}"
    try:
        if path is None:
            text = resources.files("dialogue").joinpath("data", DEFAULT_PROFILE).read_text("utf-8")
        else:
            text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"BUSINESS_PROFILE: cannot read {origin}: {exc.strerror}") from None
    try:
        return parse_profile(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"BUSINESS_PROFILE: {origin}: {exc}") from None


def parse_profile(data: dict[str, Any]) -> BusinessProfile:
    name = data.get("company_name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("company_name is required")
    faqs = []
    for n, entry in enumerate(data.get("faq", []), start=1):
        keywords = entry.get("keywords") if isinstance(entry, dict) else None
        answer = entry.get("answer") if isinstance(entry, dict) else None
        if not (isinstance(keywords, list) and keywords and isinstance(answer, str) and answer.strip()):
            raise ValueError(f"faq #{n} needs a non-empty keywords list and an answer")
        topic = str(entry.get("topic", "")).strip()
        faqs.append(Faq(tuple(str(k).lower().strip() for k in keywords), answer.strip(), topic))
    return BusinessProfile(
        company_name=name.strip(),
        opening_hours=str(data.get("opening_hours", "")).strip(),
        transfer_number=str(data.get("transfer_number", "")).strip(),
        domain_words=tuple(str(w).strip() for w in data.get("domain_words", []) if str(w).strip()),
        faqs=tuple(faqs),
    )
