"""The language-model contract, run against every implementation."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI

from dialogue.llm import LanguageModel, Message, ReplyPart, TextDelta, ToolCall, ToolSpec
from dialogue.llm_openai import OpenAILanguageModel
from fakes.behaviour import FakeReply, FakeToolCall
from fakes.server import FakeEndpoints
from tests.providers.engines import LLM_ENGINES, make_llm

TOOLS = [
    ToolSpec("end_call", "Beendet das Gespräch."),
    ToolSpec("transfer_to_human", "Verbindet mit einem Mitarbeiter."),
]


@pytest.fixture(params=LLM_ENGINES)
def llm(request: pytest.FixtureRequest) -> LanguageModel:
    return make_llm(request.param, request)


def _script(request: pytest.FixtureRequest, reply: FakeReply) -> None:
    """Tells the OpenAI fake what to answer; the scripted model decides by itself."""
    if "fake" in request.fixturenames:
        fake: FakeEndpoints = request.getfixturevalue("fake")
        fake.behaviour.replies.append(reply)


async def _collect(llm: LanguageModel, said: str, tools: list[ToolSpec]) -> list[ReplyPart]:
    messages = [Message("system", "Du bist ein Telefonassistent."), Message("user", said)]
    return [part async for part in llm.stream_reply(messages, tools)]


def test_is_a_language_model(llm: LanguageModel) -> None:
    assert isinstance(llm, LanguageModel)
    assert llm.name


async def test_streams_a_german_answer_in_several_deltas(
    llm: LanguageModel, request: pytest.FixtureRequest
) -> None:
    _script(
        request, FakeReply("Unser Kundenzentrum ist montags bis freitags geöffnet. Kann ich sonst helfen?")
    )
    parts = await _collect(llm, "Wann haben Sie geöffnet?", TOOLS)
    assert all(isinstance(p, TextDelta) for p in parts)
    assert len(parts) > 1
    text = "".join(p.text for p in parts if isinstance(p, TextDelta))
    assert "geöffnet" in text or "Uhr" in text


async def test_goodbye_ends_the_call_with_a_tool_call(
    llm: LanguageModel, request: pytest.FixtureRequest
) -> None:
    _script(request, FakeReply("", (FakeToolCall("end_call", {}),)))
    parts = await _collect(llm, "Danke, das war's. Tschüss!", TOOLS)
    calls = [p for p in parts if isinstance(p, ToolCall)]
    assert [c.name for c in calls] == ["end_call"]
    assert calls[0].id
    assert isinstance(calls[0].arguments, dict)


async def test_asking_for_a_person_transfers(llm: LanguageModel, request: pytest.FixtureRequest) -> None:
    _script(request, FakeReply("", (FakeToolCall("transfer_to_human", {"reason": "Wunsch"}),)))
    parts = await _collect(llm, "Ich möchte bitte mit einem Mitarbeiter sprechen.", TOOLS)
    assert [p.name for p in parts if isinstance(p, ToolCall)] == ["transfer_to_human"]


async def test_tool_calls_come_after_the_text(llm: LanguageModel, request: pytest.FixtureRequest) -> None:
    _script(request, FakeReply("Auf Wiederhören!", (FakeToolCall("end_call", {"grund": "fertig"}),)))
    parts = await _collect(llm, "Tschüss", TOOLS)
    kinds = [type(p) for p in parts]
    assert kinds[-1] is ToolCall
    assert ToolCall not in kinds[:-1]


async def test_consumer_may_stop_early(llm: LanguageModel, request: pytest.FixtureRequest) -> None:
    """Barge-in: the caller interrupts, the turn stops reading; nothing may hang or leak."""
    _script(request, FakeReply("Erster Satz. Zweiter Satz. Dritter Satz."))
    stream = llm.stream_reply([Message("user", "Was kostet Ökostrom?")], TOOLS)
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]


async def test_replies_of_a_call_share_one_kept_alive_connection(
    openai_client: AsyncOpenAI, fake: FakeEndpoints
) -> None:
    # A stream closed at ``[DONE]`` before its body's end would take the connection with it: against the
    # real API, a TCP and TLS handshake before every reply's first token.
    llm = OpenAILanguageModel(openai_client, first_token_timeout_s=2.0, total_timeout_s=5.0)
    for said in ("Guten Tag.", "Wann haben Sie geöffnet?", "Danke."):
        fake.behaviour.replies.append(FakeReply("Gerne. Wir haben montags bis freitags geöffnet."))
        assert await _collect(llm, said, TOOLS)
    ports = {r.client_port for r in fake.behaviour.requests_to("chat")}
    assert len(fake.behaviour.requests_to("chat")) == 3
    assert len(ports) == 1
