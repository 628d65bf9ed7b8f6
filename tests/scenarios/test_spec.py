"""The scenario file format: what a tester writes is read as meant, and every mistake names its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario_spec import ScenarioError, load_paths, load_scenario, parse_scenario

SUITE = Path(__file__).resolve().parents[2] / "scenarios"


def test_a_scenario_reads_steps_and_expectations() -> None:
    sc = parse_scenario(
        {
            "name": "Samstag",
            "xfail": "issue #14",
            "settings": {"reprompt_after_s": 3},
            "steps": [
                {"say": "Wann haben Sie offen?", "expect": {"says": "Samstag", "answer_within_ms": 1500}},
                {"say": "Stopp", "while_bot_speaks_ms": 600, "expect": {"clear_within_ms": 900}},
                {"pause_ms": 700, "expect": {"no_answer": True}},
                {"dtmf": 0, "expect": {"transferred": True, "states": ["speaking", "hangup"]}},
                {"silence_s": 2.5},
                "hangup",
            ],
        }
    )
    assert [s.action for s in sc.steps] == ["say", "say", "pause_ms", "dtmf", "silence_s", "hangup"]
    assert sc.steps[0].expect.says == ("Samstag",)
    assert sc.steps[0].expect.answer_within_ms == 1500
    assert sc.steps[1].while_bot_speaks_ms == 600
    assert sc.steps[3].digit == "0"
    assert sc.steps[3].expect.states == ("speaking", "hangup")
    assert sc.steps[4].ms == 2500
    assert sc.xfail == "issue #14"
    assert sc.settings == {"reprompt_after_s": 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": []}, "'steps' must be a non-empty list"),
        ({"steps": [{"say": "Hallo", "expect": {"sayz": ["x"]}}]}, "step 1: expect: unknown key(s) sayz"),
        ({"steps": [{"dtmf": "12"}]}, "step 1: dtmf must be one key"),
        ({"steps": [{"say": "a", "pause_ms": 3}]}, "step 1: needs exactly one of"),
        ({"steps": [{"pause_ms": -1}]}, "step 1: pause_ms must be a number ≥ 0"),
        ({"steps": [{"pause_ms": 5, "while_bot_speaks_ms": 5}]}, "while_bot_speaks_ms belongs to a say"),
        ({"steps": [{"say": "a", "expect": {"matches": "("}}]}, "matches is not a regular expression"),
        ({"steps": [{"say": "a", "expect": {"ended": "yes"}}]}, "ended must be true or false"),
    ],
)
def test_mistakes_are_named_with_their_step(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, Path("my.yaml"))
    assert str(err.value).startswith("my.yaml")
    assert message in str(err.value)


def test_broken_yaml_and_missing_wav_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [say: 'a'\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)
    wav = tmp_path / "wav.yaml"
    wav.write_text("steps:\n  - wav: missing.wav\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"missing\.wav does not exist"):
        load_scenario(wav)


def test_the_shipped_suite_parses_and_covers_the_business_profile() -> None:
    suite = load_paths([SUITE])
    assert len(suite) >= 7
    actions = {s.action for sc in suite for s in sc.steps}
    assert {"say", "pause_ms", "dtmf", "silence_s"} <= actions
    assert any(s.while_bot_speaks_ms is not None for sc in suite for s in sc.steps)
    for sc in suite:
        if sc.xfail:
            assert "issue #14" in sc.xfail, sc.name
