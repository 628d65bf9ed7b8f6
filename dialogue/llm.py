"""The narrow contract of a language model: stream a reply to a conversation, possibly as tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call, described as JSON Schema (OpenAI's ``tools`` shape)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


ReplyPart = TextDelta | ToolCall
"""A streamed reply is text deltas, then possibly tool calls (each emitted once, complete)."""


@runtime_checkable
class LanguageModel(Protocol):
    """Streams a reply. Raises ``ProviderError`` on failure, possibly mid-stream."""

    name: str

    def stream_reply(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]: ...
