"""The realtime transcriber against the loopback Realtime fake, through the real openai SDK and a real socket.

Every fault ends in a transcript of the same turn (the realtime one after a reconnect, or the batch upload
of the held audio) or in a ``ProviderError`` the session turns into a spoken fallback. No test measures
time: budgets are exceeded by injecting much longer latencies, and the outcome is read from what the fake
received.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    InputAudioBufferCommittedEvent,
    RealtimeErrorEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)

from fakes.behaviour import Fault
from fakes.server import FakeEndpoints
from media.errors import ProviderError
from media.realtime_link import Segment
from media.streaming_stt import BufferedSTT, StreamingTranscriber
from media.stt_openai import OpenAISpeechToText
from media.stt_realtime import RealtimeSTT
from tests.support.audio import frames, german_speech_ulaw, silence_ulaw

FIRST, SECOND = "Ich möchte meinen Zählerstand melden.", "Die Kundennummer ist vier zwei."
SLOW_MS = 30_000
"""A latency far beyond every budget below: the budget decides, never this."""


def engine(client: AsyncOpenAI, **overrides: float) -> RealtimeSTT:
    budgets = {"budget_s": 10.0, "final_budget_s": 2.0, "batch_reserve_s": 4.0, "connect_timeout_s": 5.0}
    budgets.update(overrides)
    batch = OpenAISpeechToText(client, max_attempts=1, timeout_s=5)
    return RealtimeSTT(
        client, fallback=batch, model="gpt-4o-mini-transcribe", prompt="Zählerstand", **budgets
    )


def say(stt: StreamingTranscriber, ulaw: bytes) -> None:
    for frame in frames(ulaw):
        stt.feed(frame)


@pytest.fixture
def clips(fake: FakeEndpoints) -> tuple[bytes, bytes]:
    first, second = german_speech_ulaw(FIRST), german_speech_ulaw(SECOND, pitch=60)
    fake.behaviour.clips.register(FIRST, first)
    fake.behaviour.clips.register(SECOND, second)
    return silence_ulaw(200) + first + silence_ulaw(300), silence_ulaw(200) + second + silence_ulaw(300)


def kinds(fake: FakeEndpoints) -> list[str]:
    return [str(r.body.get("type")) for r in fake.behaviour.requests_to("realtime")]


async def test_partials_then_the_final_of_each_committed_segment(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    stt = engine(openai_client).open_call("CA1")
    partials: list[str] = []
    stt.on_partial = partials.append
    await stt.start()
    say(stt, clips[0])
    first = await stt.commit()
    say(stt, clips[1])
    second = await stt.commit()
    await stt.close()

    assert (first.text, second.text) == (FIRST, SECOND)
    assert partials[0] == FIRST.split()[0]
    assert FIRST in partials
    assert partials[-1] == SECOND
    assert not fake.behaviour.requests_to("stt"), "no batch upload when the socket answers"
    update = fake.behaviour.requests_to("realtime")[0].body
    audio_in = update["session"]["audio"]["input"]
    assert update["type"] == "session.update"
    assert update["session"]["type"] == "transcription"
    assert audio_in["format"] == {"type": "audio/pcmu"}
    assert audio_in["turn_detection"] is None
    assert audio_in["transcription"] == {
        "model": "gpt-4o-mini-transcribe",
        "language": "de",
        "prompt": "Zählerstand",
    }
    assert kinds(fake) == ["session.update", "input_audio_buffer.commit", "input_audio_buffer.commit"]


async def test_discard_drops_the_audio_since_the_last_commit(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    stt = engine(openai_client).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    stt.discard()  # e.g. a backchannel under the bot's speech
    say(stt, clips[1])
    assert (await stt.commit()).text == SECOND
    await stt.close()
    assert "input_audio_buffer.clear" in kinds(fake)


async def test_no_final_within_the_budget_reconnects_and_the_same_turn_gets_its_words(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.inject("realtime", Fault.TIMEOUT, 1)
    stt = engine(openai_client, final_budget_s=1.0).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST
    await stt.close()
    assert kinds(fake).count("session.update") == 2, "one reconnect"
    assert not fake.behaviour.requests_to("stt")


async def test_a_final_slower_than_its_budget_ends_in_the_batch_upload_of_the_same_turn(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.pace("realtime", ttfb_ms=SLOW_MS)
    stt = engine(openai_client, final_budget_s=1.0).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST
    fake.behaviour.pace("realtime")  # the provider recovers: the next turn is realtime again
    say(stt, clips[1])
    assert (await stt.commit()).text == SECOND
    await stt.close()
    assert kinds(fake).count("session.update") == 2, "one reconnect in the slow turn; then it is kept"
    assert len(fake.behaviour.requests_to("stt")) == 1


@pytest.mark.parametrize("fault", [Fault.TIMEOUT, Fault.PARTIALS_ONLY, Fault.RESET])
async def test_a_socket_that_fails_twice_ends_in_the_batch_upload_of_the_same_audio(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes], fault: Fault
) -> None:
    fake.behaviour.inject("realtime", fault, -1)
    fake.behaviour.pace("realtime", ttfb_ms=0, per_token_ms=0)
    stt = engine(openai_client, final_budget_s=1.0).open_call("CA1")
    partials: list[str] = []
    stt.on_partial = partials.append
    await stt.start()
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST
    await stt.close()
    assert kinds(fake).count("session.update") == 2, "one reconnect, then batch"
    assert len(fake.behaviour.requests_to("stt")) == 1
    assert fault is Fault.TIMEOUT or partials, "partials were delivered before the fault"


async def test_a_refused_socket_falls_back_to_the_batch_upload(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.inject("realtime", Fault.REFUSE, -1)
    stt = engine(openai_client).open_call("CA1")
    await stt.start()  # refused: no error here, the first turn decides
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST
    say(stt, clips[1])
    assert (await stt.commit()).text == SECOND
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST  # after two failed turns: batch only, no more connects
    await stt.close()
    assert not fake.behaviour.requests_to("realtime")
    assert len(fake.behaviour.requests_to("stt")) == 3


async def test_a_socket_refused_at_ring_time_is_retried_once_at_the_first_commit(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.inject("realtime", Fault.REFUSE, 1)
    stt = engine(openai_client).open_call("CA1")
    await stt.start()
    say(stt, clips[0])  # held while there is no socket, sent on the reconnect
    assert (await stt.commit()).text == FIRST
    await stt.close()
    assert not fake.behaviour.requests_to("stt")


async def test_a_socket_closed_between_turns_is_reopened_with_the_held_audio(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.inject("realtime", Fault.RESET, 1)
    stt = engine(openai_client).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST  # closed mid-answer: reconnect, same words
    say(stt, clips[1])
    assert (await stt.commit()).text == SECOND
    await stt.close()
    assert not fake.behaviour.requests_to("stt")


async def test_a_malformed_event_is_skipped_and_the_final_still_counts(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.inject("realtime", Fault.MALFORMED, 1)
    stt = engine(openai_client).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST
    await stt.close()
    assert kinds(fake).count("session.update") == 1


async def test_when_everything_fails_the_turn_gets_a_provider_error_within_its_budget(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    fake.behaviour.inject("realtime", Fault.TIMEOUT, -1)
    fake.behaviour.inject("stt", Fault.TIMEOUT, -1)
    stt = engine(openai_client, budget_s=1.5, final_budget_s=0.2, batch_reserve_s=0.5).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    with pytest.raises(ProviderError) as err:
        await stt.commit()
    assert err.value.stage == "stt"
    await stt.close()


async def test_a_blip_is_no_turn_and_costs_no_request(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    stt = engine(openai_client).open_call("CA1")
    await stt.start()
    say(stt, silence_ulaw(60))
    assert (await stt.commit()).text == ""
    await stt.close()
    assert "input_audio_buffer.commit" not in kinds(fake)


async def test_close_leaves_no_task_and_is_idempotent(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    before = asyncio.all_tasks()
    stt = engine(openai_client).open_call("CA1")
    await stt.start()
    say(stt, clips[0])
    await stt.close()
    await stt.close()
    left = {t for t in asyncio.all_tasks() - before if t.get_name().startswith("stt_realtime")}
    assert not left


async def test_the_batch_engines_get_the_same_interface(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    stt = BufferedSTT(OpenAISpeechToText(openai_client, max_attempts=1, timeout_s=5)).open_call("CA1")
    assert isinstance(stt, StreamingTranscriber)
    await stt.start()
    say(stt, clips[0])
    stt.discard()
    say(stt, clips[1])
    assert (await stt.commit()).text == SECOND
    await stt.close()


async def test_a_failing_partial_listener_costs_nothing(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    stt = engine(openai_client).open_call("CA1")

    def broken(_text: str) -> None:
        raise RuntimeError("listener bug")

    stt.on_partial = broken
    await stt.start()
    say(stt, clips[0])
    assert (await stt.commit()).text == FIRST
    await stt.close()
    assert kinds(fake).count("session.update") == 1


async def test_a_segment_takes_only_its_own_item() -> None:
    segment = Segment(b"", asyncio.get_running_loop().create_future())
    delta = "conversation.item.input_audio_transcription.delta"
    assert segment.apply({"type": delta, "item_id": "item_0", "delta": "früher"}) is None  # before commit
    segment.apply({"type": "input_audio_buffer.committed", "item_id": "item_1"})
    segment.apply({"type": "input_audio_buffer.committed", "item_id": "item_2"})  # not ours: first wins
    assert segment.apply({"type": delta, "item_id": "item_2", "delta": "fremd"}) is None
    assert segment.apply({"type": delta, "item_id": "item_1", "delta": "Guten"}) == "Guten"
    assert segment.apply({"type": delta, "item_id": "item_1", "delta": " Tag"}) == "Guten Tag"
    segment.apply({"type": "error", "error": {"message": "late"}})  # after the commit: no failure
    assert not segment.done.done()
    segment.apply({"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_1"})
    assert segment.done.result() == "Guten Tag"  # no transcript field: the deltas


async def test_an_error_before_the_commit_is_acknowledged_fails_the_segment() -> None:
    segment = Segment(b"", asyncio.get_running_loop().create_future())
    segment.apply({"type": "error", "error": {"message": "buffer too small"}})
    with pytest.raises(ProviderError, match="commit refused: buffer too small"):
        segment.done.result()


async def test_the_fake_speaks_the_event_shapes_the_sdk_parses(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, clips: tuple[bytes, bytes]
) -> None:
    """Through the SDK's own typed receive path, not our parser: the fake is only as good as its shapes."""
    async with openai_client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        assert isinstance(await conn.recv(), SessionCreatedEvent)
        await conn.send({"type": "session.update", "session": engine(openai_client).session_config()})  # type: ignore[arg-type]
        updated = await conn.recv()
        assert isinstance(updated, SessionUpdatedEvent)
        await conn.input_audio_buffer.append(audio=base64.b64encode(clips[0]).decode())
        await conn.input_audio_buffer.commit()
        committed = await conn.recv()
        assert isinstance(committed, InputAudioBufferCommittedEvent)
        deltas = []
        while not isinstance(
            event := await conn.recv(), ConversationItemInputAudioTranscriptionCompletedEvent
        ):
            assert isinstance(event, ConversationItemInputAudioTranscriptionDeltaEvent)
            assert event.item_id == committed.item_id
            deltas.append(event.delta)
        assert event.item_id == committed.item_id
        assert event.transcript == "".join(deltas) == FIRST
        await conn.input_audio_buffer.commit()  # nothing appended since: refused, the session stays open
        assert isinstance(await conn.recv(), RealtimeErrorEvent)
