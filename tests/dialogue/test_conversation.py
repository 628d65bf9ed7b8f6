from __future__ import annotations

from dialogue.conversation import Conversation, estimate_tokens
from dialogue.llm import Message, ToolCall


def test_history_is_trimmed_to_the_budget_keeping_the_system_prompt() -> None:
    conv = Conversation("System", token_budget=60)
    for n in range(20):
        conv.add_user(f"Frage Nummer {n} mit etwas Text")
        conv.add_assistant(f"Antwort Nummer {n} mit etwas Text")
    messages = conv.messages()
    assert messages[0] == Message("system", "System")
    assert sum(estimate_tokens(m) for m in messages) <= 60
    assert messages[-1].content == "Antwort Nummer 19 mit etwas Text"


def test_trimming_never_leaves_a_tool_result_without_its_call() -> None:
    conv = Conversation("S", token_budget=40)
    conv.add_user("eins zwei drei vier fünf sechs sieben")
    conv.add_assistant("", (ToolCall("c1", "lookup", {}),))
    conv.add_tool_result("c1", "Ergebnis mit einigem Text darin")
    conv.add_user("noch eine Frage mit Text")
    assert conv.turns[0].role != "tool"


def test_an_interrupted_reply_is_kept_only_as_far_as_it_was_heard() -> None:
    conv = Conversation("S")
    conv.add_user("Welche Tarife gibt es?")
    conv.add_assistant("Es gibt drei Tarife. Der erste kostet zehn Euro.")
    assert conv.replace_last_assistant("Es gibt drei Tarife.")
    assert conv.turns[-1] == Message("assistant", "Es gibt drei Tarife.")
    conv.add_user("Und weiter?")
    assert not conv.replace_last_assistant("x")  # the reply to this question was never added
