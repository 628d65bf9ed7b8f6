"""Functions the language model may call, in a registry operators can extend without touching the session.

A tool returns either an ``Outcome`` the session acts on (end the call, transfer) or a text result that is
given back to the model for one more round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dialogue.llm import ToolSpec


class Outcome(StrEnum):
    END_CALL = "end_call"
    TRANSFER = "transfer"


ToolResult = Outcome | str
ToolHandler = Callable[[Mapping[str, Any]], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class Tool:
    spec: ToolSpec
    handler: ToolHandler


async def _end_call(_args: Mapping[str, Any]) -> ToolResult:
    return Outcome.END_CALL


async def _transfer(_args: Mapping[str, Any]) -> ToolResult:
    return Outcome.TRANSFER


END_CALL = Tool(
    ToolSpec(
        "end_call",
        "Beendet das Telefonat, nachdem du dich verabschiedet hast. "
        "Nur aufrufen, wenn der Anrufer fertig ist.",
    ),
    _end_call,
)
TRANSFER_TO_HUMAN = Tool(
    ToolSpec(
        "transfer_to_human",
        "Verbindet den Anrufer mit einem menschlichen Mitarbeiter. Aufrufen, wenn der Anrufer das wünscht "
        "oder du nicht helfen kannst.",
        {"type": "object", "properties": {"reason": {"type": "string"}}},
    ),
    _transfer,
)


class ToolRegistry:
    def __init__(self, tools: tuple[Tool, ...] = (END_CALL, TRANSFER_TO_HUMAN)) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.spec.name in self._tools:
            raise ValueError(f"tool {tool.spec.name!r} is registered twice")
        self._tools[tool.spec.name] = tool

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    async def run(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            return f"Unbekanntes Werkzeug {name!r}."
        return await tool.handler(arguments)
