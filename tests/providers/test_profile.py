"""The business profile file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogue.profile import load_profile
from media.errors import ConfigError


def test_default_profile_is_a_fictional_german_utility() -> None:
    profile = load_profile()
    assert profile.company_name == "Stadtwerke Musterstadt"
    assert "Zählerstand" in profile.domain_words
    assert len(profile.faqs) >= 5
    assert all(f.keywords and f.answer for f in profile.faqs)
    assert all(k == k.lower() for f in profile.faqs for k in f.keywords)


def test_stt_prompt_carries_the_domain_words() -> None:
    prompt = load_profile().stt_prompt()
    assert "Stadtwerke Musterstadt" in prompt
    assert "Abschlag" in prompt
    assert len(prompt) < 800  # prompts are short hints, not documents


def test_facts_for_the_llm_prompt() -> None:
    facts = load_profile().facts()
    assert facts.startswith("Öffnungszeiten:")
    assert "Zählerstand" in facts


def test_custom_profile(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(
        'company_name = "Praxis Dr. Beispiel"\n'
        'domain_words = ["Rezept", "Überweisung"]\n'
        "[[faq]]\n"
        'keywords = ["Rezept"]\n'
        'answer = "Rezepte liegen am Empfang bereit."\n',
        encoding="utf-8",
    )
    profile = load_profile(path)
    assert profile.company_name == "Praxis Dr. Beispiel"
    assert profile.faqs[0].keywords == ("rezept",)
    assert profile.stt_prompt().startswith("Anruf bei Praxis Dr. Beispiel.")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("company_name = ", "Invalid"),
        ("opening_hours = 'x'", "company_name is required"),
        ("company_name = 'X'\n[[faq]]\nanswer = 'a'", "faq #1"),
    ],
)
def test_broken_profile_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="BUSINESS_PROFILE") as caught:
        load_profile(path)
    assert message in caught.value.detail


def test_missing_profile_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile(tmp_path / "nope.toml")
