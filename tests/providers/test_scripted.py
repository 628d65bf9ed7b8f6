"""The keyword/FAQ dialogue that holds a call without any language model."""

from __future__ import annotations

import pytest

from dialogue.llm import Message, TextDelta, ToolCall, ToolSpec
from dialogue.llm_scripted import ScriptedLanguageModel
from dialogue.profile import load_profile

TOOLS = [ToolSpec("end_call", "Auflegen"), ToolSpec("transfer_to_human", "Verbinden")]


async def reply(said: str, tools: list[ToolSpec] = TOOLS) -> tuple[str, list[str]]:
    llm = ScriptedLanguageModel(load_profile())
    history = [
        Message("system", "x"),
        Message("user", said),
        Message("assistant", "Gern."),
        Message("user", said),
    ]
    parts = [p async for p in llm.stream_reply(history, tools)]
    text = "".join(p.text for p in parts if isinstance(p, TextDelta))
    return text, [p.name for p in parts if isinstance(p, ToolCall)]


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("Wann haben Sie geöffnet?", "montags bis freitags"),
        ("Ich will meinen Zählerstand durchgeben.", "Zählernummer"),
        ("ICH ZIEHE UM, wegen Umzug!", "Auszugsdatum"),
        ("Es riecht nach Gas im Keller", "Notruf"),
        ("Wie ändere ich meinen Abschlag", "Abschlag"),
        # Misheard by the local model: "melden" is near both "ummelden" and "abmelden" of the move entry,
        # but one heard word speaks for one keyword only, so the exact "zählerstand" wins.
        ("Ich muss für meine Zählerstand melden.", "Zählernummer"),
    ],
)
async def test_faq_answers(said: str, expected: str) -> None:
    text, calls = await reply(said)
    assert expected in text
    assert calls == []


@pytest.mark.parametrize("said", ["Tschüss!", "Okay, auf Wiederhören.", "Das war's, danke. Ciao"])
async def test_goodbye_ends_the_call(said: str) -> None:
    assert await reply(said) == ("", ["end_call"])


@pytest.mark.parametrize("said", ["Ich möchte einen Mitarbeiter sprechen", "Bitte einen echten Menschen!"])
async def test_asking_for_a_human_transfers(said: str) -> None:
    assert await reply(said) == ("", ["transfer_to_human"])


async def test_tools_not_offered_are_not_called() -> None:
    text, calls = await reply("Tschüss", [ToolSpec("transfer_to_human", "Verbinden")])
    assert calls == []
    assert text


async def test_unknown_question_offers_topics_and_a_human() -> None:
    text, calls = await reply("Können Sie mir ein Kochrezept empfehlen?")
    assert "leider" in text
    assert "Mitarbeiter" in text
    assert "Zählerstand" in text
    assert calls == []


async def test_greeting_and_thanks_and_silence() -> None:
    assert "helfen" in (await reply("Hallo"))[0]
    assert "sonst noch" in (await reply("Vielen Dank!"))[0]
    assert "nichts verstanden" in (await reply(""))[0]
