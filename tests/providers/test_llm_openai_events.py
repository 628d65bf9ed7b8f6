"""The chat stream's event lines as OpenAI sends them, read without the SDK's per-chunk models."""

from __future__ import annotations

import json

import pytest

from dialogue.llm import TextDelta
from dialogue.llm_openai import DONE, _PartialCall, _text_parts, parse_event_line
from media.errors import ProviderError


def _line(chunk: object) -> str:
    return "data: " + json.dumps(chunk)


def test_separators_comments_and_named_fields_carry_nothing() -> None:
    for line in ("", ": keep-alive", "event: message", "id: 7", "retry: 1000"):
        assert parse_event_line(line) is None


def test_done_ends_the_stream() -> None:
    assert parse_event_line("data: [DONE]") is DONE
    assert parse_event_line("data:[DONE]") is DONE


def test_text_and_tool_call_fragments_are_read_from_plain_json() -> None:
    calls: dict[int, _PartialCall] = {}
    lines = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Gerne, "}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "end_call", "arguments": ""},
                            }
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"reason"'}}]}}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ': "done"}'}}]}}
            ]
        },
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]
    parts = []
    for chunk in lines:
        parsed = parse_event_line(_line(chunk))
        assert parsed is not None
        parts += _text_parts(parsed, calls)
    assert parts == [TextDelta("Gerne, ")]
    call = calls[0].finish()
    assert (call.id, call.name, call.arguments) == ("call_1", "end_call", {"reason": "done"})


def test_an_error_event_mid_stream_is_a_retryable_provider_error() -> None:
    line = _line({"error": {"message": "The server had an error", "type": "server_error", "code": None}})
    with pytest.raises(ProviderError) as caught:
        parse_event_line(line)
    assert caught.value.retryable
    assert "The server had an error" in caught.value.detail


def test_broken_json_is_left_to_the_budget_to_classify_as_malformed() -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_event_line('data: {"choices": [{"delta": {"content": "Gu')
    with pytest.raises(ProviderError):
        parse_event_line("data: [1, 2]")
