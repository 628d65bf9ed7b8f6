"""A call the bot cannot take shows in the console's call list as ended, with the reason, never as live."""

from __future__ import annotations

from dialogue.events import CallEnded, CallEvent, CallStarted
from simulator.call import post_webhook
from tests.edge.conftest import AUTH_TOKEN, PUBLIC_URL, running_bot

CALL = {"CallSid": "CA" + "e" * 32, "AccountSid": "AC" + "0" * 32, "From": "+4915112345678", "To": "+4930"}


class Recorder:
    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    def publish(self, event: CallEvent) -> None:
        self.events.append(event)


async def test_a_refused_twilio_call_is_listed_as_ended_with_the_reason() -> None:
    recorder = Recorder()
    async with running_bot(wired=False) as bot:
        bot.app.state.ctx.add_sink(recorder)
        resp = await post_webhook(bot.base_url, "/voice", CALL, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN)
    assert "<Hangup" in resp.text
    started, ended = recorder.events
    assert isinstance(started, CallStarted)
    assert started.call_sid == CALL["CallSid"]
    assert "12345678" not in started.caller  # masked
    assert isinstance(ended, CallEnded)
    assert ended.reason.startswith("refused: no call session is wired")
    assert len(ended.reason) <= 64
