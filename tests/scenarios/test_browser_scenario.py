"""A shipped scenario through the console's browser call, in Debian's Chromium: what the page shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario_spec import load_scenario
from web.chromium import CHROMIUM
from web.scenario_bot import scenario_bot
from web.scenario_browser import BROWSER_SETTINGS, run_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SUITE = Path(__file__).resolve().parents[2] / "scenarios"


async def test_the_meter_reading_scenario_in_the_browser(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    scenario = load_scenario(SUITE / "meter_reading.yaml")
    async with scenario_bot(**BROWSER_SETTINGS) as bot:
        page = await run_in_browser(scenario, bot, tmp_path)
    assert page.passed, [c for c in page.checks if c.ok is False]
    assert "Zählerstand" in page.caller_lines[0]
    assert "Kundenportal" in page.bot_lines[1]
    assert {"listening", "transcribing", "thinking", "speaking"} <= set(page.states)
    assert page.latency_rows >= 1
