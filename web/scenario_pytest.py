"""pytest plugin (entry point ``pytest11``): whole calls against a bot on loopback fakes, as test functions.

Fixtures:

- ``voice_bot``: a bot started in the test's event loop on the loopback fakes (scripted FAQ dialogue, the
  transcription fake answering with the caller's own words). Mark a test
  ``@pytest.mark.voice_bot_settings(reprompt_after_s=3)`` to change settings.
- ``voice_caller``: a call to that bot, greeting heard; ``await voice_caller.say(...)`` etc.
  (``simulator.scenario_live.LiveCaller``), each step checked with a readable failure message.
- ``run_scenario``: ``await run_scenario("scenarios/opening_hours.yaml")`` plays a YAML file on its own
  bot and fails the test with the report's table if a step fails (an ``xfail:`` scenario is xfailed).

Async fixtures need pytest-asyncio (in ``voicebot[test]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from simulator.scenario_live import LiveCaller, live_call
from simulator.scenario_play import ScenarioResult
from simulator.scenario_report import table
from simulator.scenario_spec import load_scenario
from web.scenario_bot import ScenarioBot, scenario_bot
from web.scenario_runner import run_in_process


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "voice_bot_settings(**settings): settings of the voice_bot fixture")


@pytest_asyncio.fixture
async def voice_bot(request: pytest.FixtureRequest) -> AsyncIterator[ScenarioBot]:
    marker = request.node.get_closest_marker("voice_bot_settings")
    settings = dict(marker.kwargs) if marker else {}
    async with scenario_bot(**settings) as bot:
        yield bot


@pytest_asyncio.fixture
async def voice_caller(voice_bot: ScenarioBot) -> AsyncIterator[LiveCaller]:
    async with live_call(
        voice_bot.base_url,
        view=voice_bot,
        public_url=voice_bot.public_url,
        auth_token=voice_bot.auth_token,
        fast_forward=True,
    ) as caller:
        yield caller


@pytest.fixture
def run_scenario() -> Callable[[str | Path], Awaitable[ScenarioResult]]:
    """Each file runs on its own bot, with the file's ``settings:``."""

    async def run(path: str | Path) -> ScenarioResult:
        scenario = load_scenario(Path(path))
        (result,) = await run_in_process([scenario])
        if result.status == "xfail":
            pytest.xfail(f"{scenario.name}: {scenario.xfail}\n{table(result)}")
        if result.status == "fail":
            pytest.fail(table(result), pytrace=False)
        return result

    return run
