"""Call scenarios written by testers: a YAML file of caller steps, each with what the bot must do.

A tester writes German sentences and expectations, not Python; so every mistake in a file is reported with
the file, the step and the key that is wrong, and nothing is run from a file that does not parse. The
format is documented in README ("Call scenarios"); ``load_scenario`` is its only reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACTIONS = ("say", "wav", "pause_ms", "dtmf", "silence_s", "hangup")
EXPECTATIONS = (
    "answer_within_ms",
    "says",
    "matches",
    "intent",
    "no_answer",
    "no_interrupt",
    "clear_within_ms",
    "states",
    "transferred",
    "ended",
    "no_fallback",
)
_STEP_KEYS = {*ACTIONS, "while_bot_speaks_ms", "expect", "note"}
_SCENARIO_KEYS = {"name", "description", "steps", "xfail", "settings", "reply_timeout_s"}


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file, the step and the key."""


@dataclass(frozen=True, slots=True)
class Expect:
    answer_within_ms: int | None = None
    says: tuple[str, ...] = ()
    """Every one of these words or phrases is in what the bot said (case-insensitive)."""
    matches: str | None = None
    """A regular expression searched in what the bot said."""
    intent: tuple[str, ...] = ()
    """At least one of these keywords is in what the bot said."""
    no_answer: bool = False
    no_interrupt: bool = False
    clear_within_ms: int | None = None
    states: tuple[str, ...] = ()
    """State names the call passes through during the step, in this order (others may lie between)."""
    transferred: bool = False
    ended: bool = False
    no_fallback: bool = False

    @property
    def needs_answer(self) -> bool:
        return self.answer_within_ms is not None or bool(self.says or self.matches or self.intent)


@dataclass(frozen=True, slots=True)
class Step:
    action: str
    """One of ``ACTIONS``."""
    text: str = ""
    """``say``: the German sentence; ``wav``: the caller's words if given (else the file name)."""
    wav: Path | None = None
    ms: int = 0
    """``pause_ms`` and ``silence_s`` (converted to milliseconds)."""
    digit: str = ""
    while_bot_speaks_ms: int | None = None
    """Say it this far into the bot's current answer (waits for the answer to start)."""
    expect: Expect = field(default_factory=Expect)
    note: str = ""

    def describe(self) -> str:
        if self.action in ("say", "wav"):
            what = f'"{self.text}"' if self.text else str(self.wav)
            return what + (f" @{self.while_bot_speaks_ms} ms" if self.while_bot_speaks_ms is not None else "")
        if self.action == "pause_ms":
            return f"pause {self.ms} ms"
        if self.action == "silence_s":
            return f"silent {self.ms / 1000:g} s"
        if self.action == "dtmf":
            return f"DTMF {self.digit}"
        return "hang up"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    path: Path | None = None
    description: str = ""
    xfail: str | None = None
    """Expected to fail for this reason: reported XFAIL, or XPASS once it passes."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Bot settings for this scenario (in-process runs only), e.g. ``reprompt_after_s: 3``."""
    reply_timeout_s: float = 10.0


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(data, path)


def load_paths(paths: list[Path]) -> list[Scenario]:
    """Files, or directories searched for ``*.yaml``/``*.yml``; sorted, so a suite runs in a stable order."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")])
        else:
            files.append(p)
    if not files:
        raise ScenarioError("no scenario files found in " + ", ".join(map(str, paths)))
    return [load_scenario(f) for f in files]


def parse_scenario(data: Any, path: Path | None = None) -> Scenario:
    where = str(path) if path else "scenario"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: the file must be a mapping with 'name' and 'steps'")
    _unknown(data, _SCENARIO_KEYS, where)
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError(f"{where}: 'steps' must be a non-empty list")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise ScenarioError(f"{where}: 'settings' must be a mapping of bot settings")
    xfail = data.get("xfail")
    base = path.parent if path else Path.cwd()
    return Scenario(
        name=str(data.get("name") or (path.stem if path else "scenario")),
        steps=tuple(_step(s, f"{where}: step {i}", base) for i, s in enumerate(steps, 1)),
        path=path,
        description=str(data.get("description") or ""),
        xfail=None if xfail in (None, False) else str(xfail),
        settings={str(k): v for k, v in settings.items()},
        reply_timeout_s=_number(data.get("reply_timeout_s", 10.0), where, "reply_timeout_s"),
    )


def _step(raw: Any, where: str, base: Path) -> Step:
    if isinstance(raw, str) and raw == "hangup":
        return Step("hangup")
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a step is a mapping such as {{say: '...'}} or {{pause_ms: 500}}")
    _unknown(raw, _STEP_KEYS, where)
    actions = [a for a in ACTIONS if a in raw]
    if len(actions) != 1 and not (set(actions) == {"say", "wav"}):
        raise ScenarioError(f"{where}: needs exactly one of {', '.join(ACTIONS)} (found {actions or 'none'})")
    action = "wav" if "wav" in actions else actions[0]
    expect = _expect(raw.get("expect") or {}, where)
    common: dict[str, Any] = {"expect": expect, "note": str(raw.get("note") or "")}
    if "while_bot_speaks_ms" in raw:
        if action not in ("say", "wav"):
            raise ScenarioError(f"{where}: while_bot_speaks_ms belongs to a say or wav step")
        common["while_bot_speaks_ms"] = int(_number(raw["while_bot_speaks_ms"], where, "while_bot_speaks_ms"))
    if action == "say":
        text = raw["say"]
        if not isinstance(text, str) or not text.strip():
            raise ScenarioError(f"{where}: say needs a German sentence")
        return Step("say", text=text.strip(), **common)
    if action == "wav":
        wav = base / str(raw["wav"])
        if not wav.is_file():
            raise ScenarioError(f"{where}: wav file {wav} does not exist")
        return Step("wav", text=str(raw.get("say") or ""), wav=wav, **common)
    if action == "pause_ms":
        return Step("pause_ms", ms=int(_number(raw["pause_ms"], where, "pause_ms")), **common)
    if action == "silence_s":
        return Step("silence_s", ms=int(_number(raw["silence_s"], where, "silence_s") * 1000), **common)
    if action == "dtmf":
        digit = str(raw["dtmf"])
        if not re.fullmatch(r"[0-9*#]", digit):
            raise ScenarioError(f"{where}: dtmf must be one key of 0-9, * or # (got {digit!r})")
        return Step("dtmf", digit=digit, **common)
    return Step("hangup", **common)


def _expect(raw: Any, where: str) -> Expect:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: 'expect' must be a mapping, e.g. {{says: [Samstag]}}")
    _unknown(raw, set(EXPECTATIONS), f"{where}: expect")
    values: dict[str, Any] = {}
    for key in ("answer_within_ms", "clear_within_ms"):
        if key in raw:
            values[key] = int(_number(raw[key], where, key))
    for key in ("says", "intent", "states"):
        if key in raw:
            items = raw[key] if isinstance(raw[key], list) else [raw[key]]
            values[key] = tuple(str(i) for i in items)
    for key in ("no_answer", "no_interrupt", "transferred", "ended", "no_fallback"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ScenarioError(f"{where}: expect {key} must be true or false")
            values[key] = raw[key]
    if "matches" in raw:
        try:
            re.compile(str(raw["matches"]))
        except re.error as exc:
            raise ScenarioError(f"{where}: expect matches is not a regular expression: {exc}") from None
        values["matches"] = str(raw["matches"])
    return Expect(**values)


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScenarioError(f"{where}: {key} must be a number ≥ 0 (got {value!r})")
    return float(value)


def _unknown(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(map(str, raw)) - allowed)
    if extra:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}"
        )
