"""Every injected fault on every stage: a correctly classified ``ProviderError`` within the stage budget."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from dialogue.llm import Message, ReplyPart, TextDelta
from dialogue.llm_openai import OpenAILanguageModel
from fakes.behaviour import Endpoint, FakeReply, Fault
from fakes.server import FakeEndpoints
from media.errors import ProviderError
from media.espeak import synthesize_pcm16
from media.speech import Utterance
from media.stt_openai import OpenAISpeechToText
from media.tts_elevenlabs import ElevenLabsTextToSpeech

BUDGET_S = 0.4
SLACK_S = 0.3
"""Scheduling and teardown allowance on a loaded 2-core CI machine."""

RETRYABLE = {
    Fault.TIMEOUT: True,
    Fault.RATE_LIMIT: True,
    Fault.SERVER_ERROR: True,
    Fault.RESET: True,
    Fault.MALFORMED: False,
}
STATUS = {Fault.RATE_LIMIT: 429, Fault.SERVER_ERROR: 500}

Run = Callable[[], Awaitable[object]]


@pytest.fixture
def run_stage(openai_client: AsyncOpenAI, elevenlabs_client: AsyncElevenLabs) -> Callable[..., Run]:
    """One request of a stage through its production adapter, with the short test budget by default."""
    utterance = Utterance(synthesize_pcm16("Guten Tag."))

    def build(stage: Endpoint, budget_s: float = BUDGET_S) -> Run:
        async def stt() -> object:
            return await OpenAISpeechToText(openai_client, timeout_s=budget_s).transcribe(utterance)

        async def chat() -> object:
            llm = OpenAILanguageModel(
                openai_client, first_token_timeout_s=budget_s, total_timeout_s=2 * budget_s
            )
            return [p async for p in llm.stream_reply([Message("user", "Hallo")], [])]

        async def tts() -> object:
            engine = ElevenLabsTextToSpeech(elevenlabs_client, voice_id="v", first_byte_timeout_s=budget_s)
            return [c async for c in engine.synthesize("Guten Tag.")]

        return {"stt": stt, "chat": chat, "tts": tts}[stage]

    return build


@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
@pytest.mark.parametrize("fault", list(RETRYABLE))
async def test_persistent_fault_is_classified_within_budget(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint, fault: Fault
) -> None:
    fake.behaviour.inject(stage, fault, count=-1)
    started = time.perf_counter()
    with pytest.raises(ProviderError) as caught:
        await run_stage(stage)()
    elapsed = time.perf_counter() - started
    assert elapsed < BUDGET_S + SLACK_S
    err = caught.value
    assert err.stage == {"chat": "llm"}.get(stage, stage)
    assert err.retryable is RETRYABLE[fault], err.detail
    assert err.status == STATUS.get(fault)


@pytest.mark.parametrize(
    ("stage", "fault"),
    [
        *(
            (stage, fault)
            for stage in ("stt", "chat", "tts")
            for fault in (Fault.RATE_LIMIT, Fault.SERVER_ERROR)
        ),
        # A reset of a streamed answer comes after its first bytes: final by design (see below).
        ("stt", Fault.RESET),
    ],
)
async def test_one_transient_fault_is_retried_within_budget(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint, fault: Fault
) -> None:
    # A retry needs MIN_ATTEMPT_S + backoff left after the failed attempt; with the 0.4 s test budget a
    # first attempt slowed past 100 ms by a busy CI machine left no room, so this test gets a full second.
    budget_s = 1.0
    fake.behaviour.inject(stage, fault, count=1)
    started = time.perf_counter()
    assert await run_stage(stage, budget_s)()
    assert time.perf_counter() - started < budget_s + SLACK_S
    assert len(fake.behaviour.requests_to(stage)) == 2


@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
async def test_a_timeout_is_not_retried_past_the_budget(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint
) -> None:
    fake.behaviour.inject(stage, Fault.TIMEOUT, count=1)
    with pytest.raises(ProviderError):
        await run_stage(stage)()
    assert len(fake.behaviour.requests_to(stage)) == 1


@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
async def test_malformed_is_not_retried(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint
) -> None:
    fake.behaviour.inject(stage, Fault.MALFORMED, count=1)
    with pytest.raises(ProviderError):
        await run_stage(stage)()
    assert len(fake.behaviour.requests_to(stage)) == 1


@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
async def test_slow_first_byte_is_a_retryable_timeout(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint
) -> None:
    fake.behaviour.pace(stage, ttfb_ms=3000)
    started = time.perf_counter()
    with pytest.raises(ProviderError) as caught:
        await run_stage(stage)()
    assert time.perf_counter() - started < BUDGET_S + SLACK_S
    assert caught.value.retryable


@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
async def test_latency_inside_the_budget_is_fine(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint
) -> None:
    fake.behaviour.pace(stage, ttfb_ms=100, per_token_ms=5)
    assert await run_stage(stage)()


@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
async def test_a_wrong_key_is_final(
    fake: FakeEndpoints, run_stage: Callable[..., Run], stage: Endpoint
) -> None:
    fake.behaviour.openai_api_key = "another-key"
    fake.behaviour.elevenlabs_api_key = "another-key"
    with pytest.raises(ProviderError) as caught:
        await run_stage(stage)()
    assert caught.value.status == 401
    assert not caught.value.retryable


async def test_reset_after_the_first_words_is_not_retried(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    """Once the caller may be hearing the reply, a retry would repeat it: the error goes up instead."""
    fake.behaviour.replies.append(FakeReply("Guten Tag, wie kann ich helfen?"))
    fake.behaviour.inject("chat", Fault.RESET, count=1)
    llm = OpenAILanguageModel(openai_client, first_token_timeout_s=BUDGET_S)
    got: list[ReplyPart] = []

    async def consume() -> None:
        async for part in llm.stream_reply([Message("user", "Hallo")], []):
            got.append(part)

    with pytest.raises(ProviderError) as caught:
        await consume()
    assert got == [TextDelta("Guten")]
    assert caught.value.retryable
    assert len(fake.behaviour.requests_to("chat")) == 1


async def test_a_stall_mid_stream_is_caught(fake: FakeEndpoints, openai_client: AsyncOpenAI) -> None:
    fake.behaviour.pace("chat", per_token_ms=1000)
    llm = OpenAILanguageModel(openai_client, first_token_timeout_s=BUDGET_S, total_timeout_s=5)
    started = time.perf_counter()
    with pytest.raises(ProviderError) as caught:
        _ = [p async for p in llm.stream_reply([Message("user", "Hallo")], [])]
    assert time.perf_counter() - started < BUDGET_S + SLACK_S
    assert caught.value.retryable
