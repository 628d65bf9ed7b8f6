"""Which audio goes into which commit: the pre-roll, frames that arrive while a commit waits, one at a time.

The transcriber here is a recorder of the ``StreamingTranscriber`` contract (the real engines are tested in
whole calls, ``test_streamed_calls``): its transcript of a commit names the frames it was fed, so the test
reads exactly which frames each commit held. Its commits can be held open to order events by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from dialogue.streamed_turns import StreamedTurns
from media.speech import Transcript
from media.streaming_stt import PartialHandler
from media.turns import SpeechDiscarded, SpeechStarted


class Recorder:
    def __init__(self) -> None:
        self.fed: list[str] = []
        self.commits: list[list[str]] = []
        self.discards = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.on_partial: PartialHandler | None = None

    async def start(self) -> None:
        return None

    def feed(self, ulaw: bytes) -> None:
        self.fed.append(ulaw.decode())

    async def commit(self) -> Transcript:
        audio, self.fed = self.fed, []  # taken before the first await, as the real engines do
        self.commits.append(audio)
        await self.gate.wait()
        return Transcript(" ".join(audio))

    def discard(self) -> None:
        self.fed.clear()
        self.discards += 1

    async def close(self) -> None:
        return None


def _turns(recorder: Recorder, window: int = 3) -> StreamedTurns:
    def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return asyncio.get_running_loop().create_task(coro, name=name)

    return StreamedTurns(recorder, spawn=spawn, window_frames=window)


def _feed(turns: StreamedTurns, *frames: str) -> None:
    for frame in frames:
        turns.feed(frame.encode())


async def test_only_the_pre_roll_and_the_segment_are_sent() -> None:
    recorder = Recorder()
    turns = _turns(recorder, window=2)
    _feed(turns, "s1", "s2", "s3", "on")
    turns.on_event(SpeechStarted(at_ms=0))
    _feed(turns, "w1", "w2")
    assert recorder.fed == ["s3", "on", "w1", "w2"]  # silence before the pre-roll never leaves the call


async def test_frames_arriving_while_a_commit_waits_go_into_the_next_commit() -> None:
    recorder = Recorder()
    turns = _turns(recorder)
    turns.on_event(SpeechStarted(at_ms=0))
    _feed(turns, "a1", "a2")
    recorder.gate.clear()  # the first commit will hang until the test opens it
    pause = turns.pause()
    _feed(turns, "b1")  # the commit task has not run yet: this frame is not the first part's
    await asyncio.sleep(0)
    _feed(turns, "b2")
    turn = turns.end_turn(after_pause=False)
    _feed(turns, "after")  # the segment is over: kept for the next pre-roll only
    recorder.gate.set()
    first, whole = await pause, await turn
    assert recorder.commits == [["a1", "a2"], ["b1", "b2"]]
    assert first == Transcript("a1 a2")
    assert whole == Transcript("a1 a2 b1 b2")


async def test_a_caller_silent_after_the_pause_reuses_its_commit_and_drops_the_silence() -> None:
    recorder = Recorder()
    turns = _turns(recorder)
    turns.on_event(SpeechStarted(at_ms=0))
    _feed(turns, "w1", "w2")
    pause = turns.pause()
    await pause
    _feed(turns, "quiet")
    whole = await turns.end_turn(after_pause=True)
    assert recorder.commits == [["w1", "w2"]]
    assert recorder.discards == 1
    assert whole == Transcript("w1 w2")


async def test_a_backchannel_is_discarded_and_the_next_turn_starts_clean() -> None:
    recorder = Recorder()
    turns = _turns(recorder)
    turns.on_event(SpeechStarted(at_ms=0))
    _feed(turns, "mhm")
    turns.on_event(SpeechDiscarded(at_ms=300, duration_ms=300))
    _feed(turns, "q0")
    turns.on_event(SpeechStarted(at_ms=900))
    _feed(turns, "q1")
    assert await turns.end_turn(after_pause=False) == Transcript("q0 q1")


async def test_a_caller_who_went_on_gets_one_turn_of_all_parts() -> None:
    recorder = Recorder()
    turns = _turns(recorder)
    turns.on_event(SpeechStarted(at_ms=0))
    _feed(turns, "first")
    await turns.end_turn(after_pause=False)
    turns.on_event(SpeechStarted(at_ms=900))
    _feed(turns, "more")
    assert await turns.end_turn(after_pause=False, carry=True) == Transcript("first more")
