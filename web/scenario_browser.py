"""A scenario through the console's browser call: Chromium's fake microphone speaks, the page is checked.

The same YAML as a phone scenario, seen from the console: the caller's sentences go into one WAV file that
Chromium plays as its microphone into ``/console/browser-call``, and the checks read what the page shows
(the transcript lines, the state badge, the latency waterfall). A microphone file cannot react to the bot,
so its timeline is fixed: silence for the greeting, then each sentence followed by room for the answer.
The browser resamples the audio, so the fake transcriber cannot recognise the clips sample by sample; it is
given the sentences in order instead (with speculative and hedged transcriptions off, one request per turn).

Needs Playwright (``voicebot[test]``) and Debian's ``/usr/bin/chromium``; never ``playwright install``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.caller_audio import load_wav, speech_ulaw
from simulator.scenario_checks import Check
from simulator.scenario_spec import Scenario, ScenarioError
from web.chromium import RECORD_STATES, launch, write_microphone_wav
from web.scenario_bot import ScenarioBot

BROWSER_SETTINGS: dict[str, Any] = {"eager_eot_ms": 0, "stt_hedge_after_s": 0.0}
"""For ``scenario_bot``: one transcription per turn, so the queued sentences line up with the turns."""


@dataclass
class PageOutcome:
    caller_lines: list[str] = field(default_factory=list)
    bot_lines: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    latency_rows: int = 0
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks)


def microphone_wav(
    scenario: Scenario, path: Path, *, greeting_ms: int = 9000, answer_ms: int = 9000
) -> tuple[Path, list[str]]:
    """The scenario as one 48 kHz microphone file, and the caller's sentences in the order spoken."""
    pieces: list[bytes] = [b"\xff" * (8 * greeting_ms)]
    said: list[str] = []
    for i, step in enumerate(scenario.steps):
        if step.action in ("say", "wav"):
            nxt = scenario.steps[i + 1] if i + 1 < len(scenario.steps) else None
            ulaw = (
                speech_ulaw(step.text)
                if step.action == "say"
                else load_wav(step.wav or Path(), level_db=-20.0)
            )
            gap = answer_ms
            if nxt is not None and nxt.while_bot_speaks_ms is not None:
                gap = 1500 + nxt.while_bot_speaks_ms  # end of turn and first audio, then into the answer
            pieces += [ulaw, b"\xff" * (8 * gap)]
            said.append(step.text)
        elif step.action in ("pause_ms", "silence_s"):
            pieces.append(b"\xff" * (8 * step.ms))
        else:
            raise ScenarioError(f"{scenario.name}: a browser call has no {step.action} (step {i + 1})")
    write_microphone_wav(path, b"".join(pieces))
    return path, said


async def run_in_browser(
    scenario: Scenario, bot: ScenarioBot, workdir: Path, *, timeout_s: float = 60.0
) -> PageOutcome:
    """Plays ``scenario`` in Chromium against ``bot`` (started with ``BROWSER_SETTINGS``), judges the page."""
    from playwright.async_api import async_playwright

    wav, said = microphone_wav(scenario, workdir / "microphone.wav")
    bot.behaviour.transcripts.extend(said)
    out = PageOutcome()
    async with async_playwright() as pw:
        browser = await launch(pw, microphone_wav=wav)
        try:
            context = await browser.new_context(base_url=bot.base_url)
            page = await context.new_page()
            await page.goto("/console")
            await page.fill("input[name=password]", bot.settings.console_password.get_secret_value())
            await page.click('form[action="/console/login"] button')
            await page.wait_for_selector("#live")
            await page.goto("/console/browser-call")
            await page.evaluate(RECORD_STATES)
            await page.click("#call-start")
            turns = len(said)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while asyncio.get_running_loop().time() < deadline:  # the page's CSP forbids wait_for_function
                done = await page.locator(".turn.bot:not(.pending)").count()
                if await page.locator(".turn.caller").count() >= turns and done >= turns + 1:
                    break
                await asyncio.sleep(0.1)
            out.caller_lines = await page.locator(".turn.caller").all_inner_texts()
            out.bot_lines = await page.locator(".turn.bot").all_inner_texts()
            out.states = await page.evaluate("() => window.__states")
            out.latency_rows = await page.locator(".latency-row").count()
            await page.click("#call-hangup")
        finally:
            await browser.close()
    out.checks = judge_page(scenario, out, said)
    return out


def judge_page(scenario: Scenario, out: PageOutcome, said: list[str]) -> list[Check]:
    """Per sentence: its line in the transcript, the bot's next line against ``says``/``matches``/``intent``;
    for the whole call: the states shown in order and a waterfall row per answered turn."""
    checks: list[Check] = []
    bot_after_greeting = out.bot_lines[1:]
    k = 0
    for step in scenario.steps:
        if step.action not in ("say", "wav"):
            continue
        shown = out.caller_lines[k] if k < len(out.caller_lines) else ""
        checks.append(Check("transcript", step.text in shown, f"caller line {k + 1}: {shown!r}"))
        answer = bot_after_greeting[k] if k < len(bot_after_greeting) else ""
        exp = step.expect
        if exp.says:
            missing = [w for w in exp.says if w.casefold() not in answer.casefold()]
            checks.append(
                Check("says", not missing, f"missing {missing}; page shows {answer!r}" if missing else answer)
            )
        if exp.matches:
            ok = re.search(exp.matches, answer, re.IGNORECASE) is not None
            checks.append(Check("matches", ok, f"/{exp.matches}/ on {answer!r}"))
        if exp.intent:
            ok = any(w.casefold() in answer.casefold() for w in exp.intent)
            checks.append(Check("intent", ok, f"{list(exp.intent)} on {answer!r}"))
        k += 1
    wanted = [s for step in scenario.steps for s in step.expect.states]
    rest = iter(out.states)
    ok = all(any(s == name for s in rest) for name in wanted)
    checks.append(
        Check("states", ok, f"badge showed {' → '.join(out.states)}; expected {' → '.join(wanted)}")
    )
    checks.append(Check("waterfall", out.latency_rows >= len(said), f"{out.latency_rows} latency rows"))
    return checks
