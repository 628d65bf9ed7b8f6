"""The fault matrix end to end at CI size: one live call with the primary model down, through the simulator.

Outcomes are asserted (the fallback model answered, the next turn too, nothing left running); the times
are printed only, as every figure of ``bench/``.
"""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bench import faults


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_the_fallback_model_answers_a_live_call_when_the_primary_is_down() -> None:
    args = argparse.Namespace(
        stages=["llm"], faults=["500"], scopes=["down"], no_failover=False, local_stt=False, set=[]
    )
    cells = asyncio.run(faults.run(args))
    print(faults.table(cells))  # shown with -s
    baseline, down = cells
    assert baseline.faulted.heard == "answer"
    assert down.faulted.heard == "answer"
    assert down.requests == "1/1"  # the primary once (it failed), then the fallback model once
    assert down.following.heard == "answer"
    assert down.tasks_left == 0
