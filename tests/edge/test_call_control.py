"""Hang-up and transfer through the real twilio SDK, talking to the loopback REST fake."""

from __future__ import annotations

import pytest

from fakes.twilio_rest import TwilioRestFake
from media.errors import ProviderError
from simulator.call import place_call
from tests.edge.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, running_bot
from web.call_control import TwilioCallControl, TwilioRest

CALL_SID = "CA" + "d" * 32


class Closer:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def test_hangup_and_transfer_update_the_call_twiml() -> None:
    async with TwilioRestFake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake.base_url)
        closer = Closer()
        control = TwilioCallControl(rest, closer)
        await control.hangup(CALL_SID)
        assert await control.transfer(CALL_SID, "+4989111222")
        await rest.aclose()
    hangup, transfer = fake.updates_for(CALL_SID)
    assert hangup.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
    assert hangup.form == {"Twiml": "<Response><Hangup /></Response>"}
    twiml = transfer.form["Twiml"]
    assert '<Say language="de-DE">' in twiml
    assert twiml.endswith("<Dial>+4989111222</Dial></Response>")
    assert closer.calls == 0


async def test_wrong_credentials_are_a_non_retryable_provider_error() -> None:
    async with TwilioRestFake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        rest = TwilioRest(ACCOUNT_SID, "wrong", api_base_url=fake.base_url)
        with pytest.raises(ProviderError) as info:
            await rest.update_twiml(CALL_SID, "<Response><Hangup/></Response>")
        await rest.aclose()
    assert (info.value.status, info.value.retryable) == (401, False)
    assert fake.requests == []


async def test_when_twilio_fails_hangup_falls_back_to_closing_the_stream() -> None:
    async with TwilioRestFake(ACCOUNT_SID, AUTH_TOKEN, fail_status=503) as fake:
        rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake.base_url)
        closer = Closer()
        control = TwilioCallControl(rest, closer)
        with pytest.raises(ProviderError) as info:
            await rest.update_twiml(CALL_SID, "<Response/>")
        assert info.value.retryable
        await control.hangup(CALL_SID)
        assert not await control.transfer(CALL_SID, "+4989111222")
        await rest.aclose()
    assert closer.calls == 1


async def test_unreachable_twilio_is_retryable() -> None:
    rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_base_url="http://127.0.0.1:9", timeout_s=1)
    with pytest.raises(ProviderError) as info:
        await rest.update_twiml(CALL_SID, "<Response/>")
    await rest.aclose()
    assert info.value.retryable


async def test_session_hangs_up_and_transfers_a_live_call_through_rest() -> None:
    async with (
        TwilioRestFake(ACCOUNT_SID, AUTH_TOKEN) as fake,
        running_bot(twilio_account_sid=ACCOUNT_SID, twilio_api_base_url=fake.base_url) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN) as sim,
    ):
        await sim.send_dtmf("0")
        handler = await bot.factory.for_call(sim.call_sid)
        await sim.wait_for(lambda: handler.transfer_result is not None)
        assert handler.transfer_result is True
        await sim.send_dtmf("9")
        await sim.wait_for(lambda: len(fake.updates_for(sim.call_sid)) == 2)
        assert not sim.closed  # Twilio, not the bot, ends the stream after a REST update
    transfer, hangup = fake.updates_for(sim.call_sid)
    assert "<Dial>+4989111222</Dial>" in transfer.form["Twiml"]
    assert "<Hangup />" in hangup.form["Twiml"]
