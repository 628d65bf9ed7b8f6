"""Which words the caller heard, from mark echoes, clears and elapsed time."""

from __future__ import annotations

import pytest

from media.playback import PlaybackTracker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_echoes_mark_segments_heard_in_order(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    tr.segment("a", "Guten Tag.", 8000, turn=1)
    tr.segment("b", "Wie kann ich helfen?", 8000, turn=1)
    assert tr.pending == ("a", "b")
    assert not tr.all_played
    result = tr.on_echo("a")
    assert (result.heard, result.known, result.turn) == (True, True, 1)
    assert tr.heard_text(1) == "Guten Tag."
    assert tr.on_echo("b").heard
    assert tr.all_played
    hearing = tr.hearing(1)
    assert (hearing.heard, hearing.cut, hearing.pending, hearing.complete) == (
        "Guten Tag. Wie kann ich helfen?",
        "",
        "",
        True,
    )


def test_a_later_echo_implies_the_earlier_marks_played(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    tr.segment("a", "Eins.", 800)
    tr.segment("b", "Zwei.", 800)
    assert tr.on_echo("b").heard
    assert tr.heard_text(0) == "Eins. Zwei."
    assert tr.all_played


def test_echoes_after_clear_are_not_heard(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    tr.segment("a", "Erster Satz.", 8000, turn=2)
    clock.t += 1.0
    assert tr.on_echo("a").heard
    tr.segment("b", "Zweiter Satz kommt hier.", 16000, turn=2, started_at=clock.t)
    tr.segment("c", "Dritter Satz.", 8000, turn=2)
    assert tr.on_clear() == ["b", "c"]
    assert tr.all_played
    assert tr.on_echo("b").heard is False
    assert tr.on_echo("c").heard is False
    hearing = tr.hearing(2)
    assert hearing.heard == "Erster Satz."
    assert hearing.cut == "Zweiter Satz kommt hier. Dritter Satz."
    assert hearing.interrupted
    assert not hearing.complete


def test_partially_played_segment_is_cut_at_a_word_boundary(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    text = "Ihr Termin ist am Montag um neun Uhr."
    tr.segment("a", text, 8000, turn=1, started_at=clock.t)  # one second of audio
    clock.t += 0.5  # half of it played when the caller barged in
    assert tr.on_clear() == ["a"]
    hearing = tr.hearing(1)
    assert text.startswith(hearing.heard)
    assert hearing.heard == "Ihr Termin ist am"
    assert hearing.cut == "Montag um neun Uhr."
    assert tr.on_echo("a").heard is False
    assert tr.heard_until("a") == "Ihr Termin ist am"


def test_estimate_counts_from_the_previous_echo(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    tr.segment("a", "Hallo.", 4000, started_at=clock.t)
    tr.segment("b", "eins zwei drei vier", 8000, started_at=clock.t)  # sent ahead, queued behind "a"
    clock.t += 0.5
    tr.on_echo("a")  # "b" starts playing now
    clock.t += 0.25
    tr.on_clear()
    assert tr.hearing(0).heard == "Hallo. eins"


def test_clear_with_nothing_pending_flushes_nothing(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    assert tr.on_clear() == []
    assert tr.on_echo("never-sent").known is False


def test_forget_drops_a_turn(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    tr.segment("a", "Eins.", 800, turn=1)
    tr.forget(1)
    assert tr.all_played
    assert tr.hearing(1).heard == ""
    assert tr.on_echo("a").known is False


def test_duplicate_mark_is_a_bug(clock: Clock) -> None:
    tr = PlaybackTracker(clock=clock)
    tr.segment("a", "Eins.", 800)
    with pytest.raises(ValueError, match="twice"):
        tr.segment("a", "Zwei.", 800)
