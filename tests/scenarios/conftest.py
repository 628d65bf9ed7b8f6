"""The scenario plugin's fixtures, until the package's ``pytest11`` entry point is installed (then both
define the same fixtures; these conftest ones take precedence, which changes nothing)."""

from web.scenario_pytest import pytest_configure, run_scenario, voice_bot, voice_caller

__all__ = ["pytest_configure", "run_scenario", "voice_bot", "voice_caller"]
