"""The conversation the language model sees: system prompt plus recent turns, trimmed to a token budget.

Only what the caller actually heard is kept for the bot's turns, so after an interruption the model does not
believe it said things the caller never heard.
"""

from __future__ import annotations

from dialogue.llm import Message, ToolCall

CHARS_PER_TOKEN = 4
"""A rough estimate that errs on the safe side for German; exact counts would need the model's tokenizer."""


def estimate_tokens(message: Message) -> int:
    tool_chars = sum(len(c.name) + len(str(c.arguments)) for c in message.tool_calls)
    return 4 + (len(message.content) + tool_chars) // CHARS_PER_TOKEN


class Conversation:
    def __init__(self, system_prompt: str, *, token_budget: int = 3000) -> None:
        self._system = Message("system", system_prompt)
        self._turns: list[Message] = []
        self._budget = token_budget

    def add_user(self, text: str) -> Message:
        message = Message("user", text)
        self._turns.append(message)
        self._trim()
        return message

    def rollback(self, message: Message) -> None:
        """Forgets ``message`` and all after it: the caller went on, and the turn is transcribed anew."""
        for i in range(len(self._turns) - 1, -1, -1):
            if self._turns[i] is message:
                del self._turns[i:]
                return

    def add_assistant(self, text: str, tool_calls: tuple[ToolCall, ...] = ()) -> None:
        if text or tool_calls:
            self._turns.append(Message("assistant", text, tool_calls=tool_calls))
            self._trim()

    def replace_last_assistant(self, text: str) -> bool:
        """After a barge-in: the reply stays in history only as far as the caller heard it."""
        for i in range(len(self._turns) - 1, -1, -1):
            message = self._turns[i]
            if message.role == "assistant":
                self._turns[i] = Message("assistant", text, tool_calls=message.tool_calls)
                return True
            if message.role == "user":
                return False
        return False

    def add_tool_result(self, call_id: str, result: str) -> None:
        self._turns.append(Message("tool", result, tool_call_id=call_id))
        self._trim()

    def messages(self) -> list[Message]:
        return [self._system, *self._turns]

    @property
    def turns(self) -> list[Message]:
        return list(self._turns)

    def _trim(self) -> None:
        """Drops the oldest turns until the budget holds; never leaves a tool result without its call."""
        total = estimate_tokens(self._system) + sum(estimate_tokens(m) for m in self._turns)
        while total > self._budget and len(self._turns) > 1:
            dropped = self._turns.pop(0)
            total -= estimate_tokens(dropped)
            while self._turns and self._turns[0].role == "tool":
                total -= estimate_tokens(self._turns.pop(0))
