"""Judging one scenario step: what the wire and the bot's events showed, against what the tester expected.

Each expectation becomes a ``Check`` with a sentence a tester can act on ("expected the answer to contain
'Samstag'; the bot said: …"), never a bare False. Checks that need the bot's own events (states, said
words, fallbacks) are skipped, with a reason, when only the wire is observable (``--url``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dialogue.phrases import german_catalogue
from simulator.scenario_spec import Expect, Step

_LINES = german_catalogue("-")
FALLBACK_SENTENCES = (_LINES.stt_fallback, _LINES.llm_fallback, _LINES.tts_fallback)
NO_EVENTS = "skipped: needs the bot's events (in-process run, not --url)"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool | None
    """None: could not be judged here (skipped)."""
    detail: str = ""


@dataclass(slots=True)
class StepOutcome:
    """What one step observed; filled in by the player, judged by ``judge``."""

    step: Step
    index: int
    caller_said: str = ""
    latency_ms: float | None = None
    clear_ms: float | None = None
    answered: bool = False
    new_clears: int = 0
    closed: bool = False
    events: list[Any] | None = None
    """The bot's events of this call during the step; None when they cannot be observed."""
    problems: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def bot_said(self) -> str:
        if self.events is None:
            return ""
        return " ".join(e.text for e in self.events if e.kind == "bot_sentence")

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]


def judge(out: StepOutcome) -> list[Check]:
    exp: Expect = out.step.expect
    checks = [Check("step ran", False, p) for p in out.problems]
    said = out.bot_said
    heard = f"the bot said: {said!r}" if said else "the bot said nothing"
    if exp.answer_within_ms is not None:
        if out.latency_ms is None:
            checks.append(
                Check("answer_within_ms", False, f"no answer (expected within {exp.answer_within_ms} ms)")
            )
        else:
            ok = out.latency_ms <= exp.answer_within_ms
            checks.append(
                Check(
                    "answer_within_ms",
                    ok,
                    f"answered after {out.latency_ms:.0f} ms (budget {exp.answer_within_ms} ms)",
                )
            )
    if exp.says:
        if out.events is None:
            checks.append(Check("says", None, NO_EVENTS))
        else:
            missing = [w for w in exp.says if w.casefold() not in said.casefold()]
            detail = f"missing {', '.join(map(repr, missing))}; {heard}" if missing else heard
            checks.append(Check("says", not missing, detail))
    if exp.matches is not None:
        if out.events is None:
            checks.append(Check("matches", None, NO_EVENTS))
        else:
            ok = re.search(exp.matches, said, re.IGNORECASE) is not None
            checks.append(Check("matches", ok, f"/{exp.matches}/ {'found' if ok else 'not found'}; {heard}"))
    if exp.intent:
        if out.events is None:
            checks.append(Check("intent", None, NO_EVENTS))
        else:
            hits = [w for w in exp.intent if w.casefold() in said.casefold()]
            detail = (
                f"keywords found: {', '.join(hits)}" if hits else f"none of {', '.join(exp.intent)}; {heard}"
            )
            checks.append(Check("intent", bool(hits), detail))
    if exp.no_answer:
        turns = _caller_turns(out)
        ok = not out.answered and not turns
        detail = (
            "no reply" if ok else f"the bot took it as a turn ({'; '.join(turns) or 'it answered'}); {heard}"
        )
        checks.append(Check("no_answer", ok, detail))
    if exp.no_interrupt:
        cut = [e for e in out.events or [] if e.kind == "transcript" and e.role == "bot" and e.interrupted]
        ok = out.new_clears == 0 and not cut
        detail = "the answer went on" if ok else f"the bot's answer was cut ({out.new_clears} clear)"
        checks.append(Check("no_interrupt", ok, detail))
    if exp.clear_within_ms is not None:
        if out.clear_ms is None:
            checks.append(
                Check(
                    "clear_within_ms", False, f"no clear arrived (expected within {exp.clear_within_ms} ms)"
                )
            )
        else:
            ok = out.clear_ms <= exp.clear_within_ms
            detail = f"clear {out.clear_ms:.0f} ms after the caller started (budget {exp.clear_within_ms} ms)"
            checks.append(Check("clear_within_ms", ok, detail))
    if exp.states:
        checks.append(_states(out, exp.states))
    if exp.transferred:
        if out.events is None:
            checks.append(Check("transferred", None, NO_EVENTS))
        else:
            reasons = [e.reason for e in out.events if e.kind == "call_ended"]
            ok = "transferred" in reasons
            detail = (
                "transferred to a human" if ok else f"call end: {', '.join(reasons) or 'the call went on'}"
            )
            checks.append(Check("transferred", ok, detail))
    if exp.ended:
        checks.append(
            Check("ended", out.closed, "the bot ended the call" if out.closed else "the call went on")
        )
    if exp.no_fallback:
        if out.events is None:
            checks.append(Check("no_fallback", None, NO_EVENTS))
        else:
            errors = [f"{e.stage}: {e.detail}" for e in out.events if e.kind == "error"]
            fallbacks = [
                e.text for e in out.events if e.kind == "bot_sentence" and e.text in FALLBACK_SENTENCES
            ]
            ok = not errors and not fallbacks
            detail = "no fallback" if ok else "; ".join([*(f"fallback {t!r}" for t in fallbacks), *errors])
            checks.append(Check("no_fallback", ok, detail))
    return checks


def _caller_turns(out: StepOutcome) -> list[str]:
    return [
        repr(e.text) for e in out.events or [] if e.kind == "transcript" and e.role == "caller" and e.text
    ]


def _states(out: StepOutcome, wanted: tuple[str, ...]) -> Check:
    if out.events is None:
        return Check("states", None, NO_EVENTS)
    seen = [e.dest for e in out.events if e.kind == "state_changed"]
    rest = iter(seen)
    ok = all(any(s == name for s in rest) for name in wanted)
    path = " → ".join(seen) or "no transitions"
    return Check("states", ok, f"expected {' → '.join(wanted)}; saw {path}")
