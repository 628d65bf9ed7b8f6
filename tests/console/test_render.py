"""Templates are compiled when the console is built, never on the event loop of a first page view."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import Environment

from console.render import Renderer


def test_a_built_console_compiles_no_template_when_pages_are_served(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = Renderer()
    compiled: list[str] = []
    compile_source = Environment.compile

    def counting(self: Environment, source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(name))
        return compile_source(self, source, name, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counting)
    names = renderer.env.list_templates()
    assert {"call.html", "_call.html", "calls.html", "login.html"} <= set(names)
    for name in names:  # what ``page`` and ``fragment`` look up
        renderer.env.get_template(name)
    assert compiled == []
