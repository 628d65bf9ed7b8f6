"""Running many scenarios: concurrently, one in-process bot per distinct ``settings:``, or against ``--url``.

Concurrent calls keep a suite as long as its longest scenario (they are real-time calls); one bot serves all
scenarios that ask for the same settings, as one process serves many callers in production.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from simulator.scenario_play import Progress, ScenarioResult, play
from simulator.scenario_spec import Scenario
from web.scenario_bot import scenario_bot


async def run_in_process(
    scenarios: list[Scenario], *, progress: Progress | None = None, **overrides: Any
) -> list[ScenarioResult]:
    """Each group of scenarios with the same ``settings:`` gets its own bot; results keep input order."""
    groups: dict[str, list[int]] = {}
    for i, sc in enumerate(scenarios):
        groups.setdefault(json.dumps(sc.settings, sort_keys=True, default=str), []).append(i)
    results: list[ScenarioResult | None] = [None] * len(scenarios)

    async def group(indices: list[int]) -> None:
        settings = {**overrides, **scenarios[indices[0]].settings}
        async with scenario_bot(**settings) as bot:
            outs = await asyncio.gather(
                *(
                    play(
                        scenarios[i],
                        bot.base_url,
                        view=bot,
                        public_url=bot.public_url,
                        auth_token=bot.auth_token,
                        progress=progress,
                        fast_forward=True,
                    )
                    for i in indices
                )
            )
        for i, out in zip(indices, outs, strict=True):
            results[i] = out

    await asyncio.gather(*(group(ix) for ix in groups.values()))
    return [r for r in results if r is not None]


async def run_against_url(
    scenarios: list[Scenario],
    url: str,
    *,
    public_url: str | None = None,
    auth_token: str | None = None,
    progress: Progress | None = None,
    on_clip: Callable[[str, bytes], None] | None = None,
) -> list[ScenarioResult]:
    """Only the wire is observable: checks on the bot's words, states and fallbacks are reported skipped."""
    return list(
        await asyncio.gather(
            *(
                play(
                    sc, url, public_url=public_url, auth_token=auth_token, progress=progress, on_clip=on_clip
                )
                for sc in scenarios
            )
        )
    )
