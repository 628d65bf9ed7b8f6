"""Streamed chat completions on OpenAI (``gpt-4o-mini`` by default), text first, tool calls at the end.

Streaming is what makes the bot answer in about a second: the first sentence goes to TTS while the model is
still writing the second. Tool-call arguments arrive in fragments, so they are assembled here and each call
is emitted once, complete, as the ``LanguageModel`` contract promises.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk

from dialogue.llm import Message, ReplyPart, TextDelta, ToolCall, ToolSpec
from media.budget import stream_with_budget
from media.errors import ProviderError


class OpenAILanguageModel:
    """First part within ``first_token_timeout_s``, the whole reply within ``total_timeout_s``."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str = "gpt-4o-mini",
        first_token_timeout_s: float = 3.0,
        total_timeout_s: float = 15.0,
        temperature: float = 0.3,
        max_tokens: int = 300,
        max_attempts: int = 2,
    ) -> None:
        self._client = client
        self.model = model
        self.first_token_timeout_s = first_token_timeout_s
        self.total_timeout_s = total_timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_attempts = max_attempts
        self.name = f"openai:{model}"

    def stream_reply(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        return stream_with_budget(
            lambda: self._request(messages, tools),
            stage="llm",
            first_item_s=self.first_token_timeout_s,
            # A pause this long mid-sentence is dead air on the phone, as bad as a slow first token.
            idle_s=self.first_token_timeout_s,
            total_s=self.total_timeout_s,
            max_attempts=self.max_attempts,
        )

    async def _request(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        extra: dict[str, Any] = {"tools": [tool_to_wire(t) for t in tools]} if tools else {}
        stream = await self._client.chat.completions.create(
            model=self.model,
            messages=[message_to_wire(m) for m in messages],
            stream=True,
            temperature=self.temperature,
            max_completion_tokens=self.max_tokens,
            timeout=self.total_timeout_s,
            **extra,
        )
        calls: dict[int, _PartialCall] = {}
        try:
            async for chunk in stream:
                for part in _text_parts(chunk, calls):
                    yield part
        finally:
            await stream.close()
        for index in sorted(calls):
            yield calls[index].finish()


def _text_parts(chunk: ChatCompletionChunk, calls: dict[int, _PartialCall]) -> list[ReplyPart]:
    """Text deltas of one chunk; tool-call fragments are collected into ``calls`` for the end."""
    parts: list[ReplyPart] = []
    for choice in chunk.choices:  # the usage-only last chunk has no choices
        delta = choice.delta
        if delta.content:
            parts.append(TextDelta(delta.content))
        for fragment in delta.tool_calls or ():
            call = calls.setdefault(fragment.index, _PartialCall())
            call.id = fragment.id or call.id
            if fragment.function is not None:
                call.name = fragment.function.name or call.name
                call.arguments += fragment.function.arguments or ""
    return parts


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""

    def finish(self) -> ToolCall:
        try:
            args = json.loads(self.arguments) if self.arguments.strip() else {}
        except json.JSONDecodeError:
            detail = f"tool call {self.name!r} has arguments that are not JSON"
            raise ProviderError("llm", detail, retryable=False) from None
        if not self.name or not isinstance(args, dict):
            raise ProviderError(
                "llm", "tool call without a name or with non-object arguments", retryable=False
            )
        return ToolCall(id=self.id or f"call_{self.name}", name=self.name, arguments=args)


def tool_to_wire(tool: ToolSpec) -> Any:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def message_to_wire(message: Message) -> Any:
    """Our ``Message`` in the Chat Completions shape (loosely typed: the SDK's TypedDict union is huge)."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
            }
            for call in message.tool_calls
        ]
    if message.role == "tool":
        wire["tool_call_id"] = message.tool_call_id or ""
    return wire
