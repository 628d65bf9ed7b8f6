"""``voicebot connect`` end to end: the real twilio SDK against the REST fake, the bot behind a stand-in
tunnel, and a signed test request through it. Faults must say what to do and leave the number as it was."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fakes.twilio_rest import TwilioRestFake
from tests.console.browser import free_port
from tests.support.server import run_app
from tests.support.tunnel import StandInTunnel, stand_in_tunnel
from web.app import create_app
from web.connect import connect_number
from web.connect_cli import connect_only, serve_connected
from web.settings import Settings
from web.tunnel import Tunnel
from web.twilio_numbers import TwilioSetupError

SID = "AC" + "c" * 32
TOKEN = "connect-test-token-71"
NUMBER = "+4930123456"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "twilio_account_sid": SID,
        "twilio_auth_token": TOKEN,
        "data_dir": tmp_path,
        "stt_provider": "none",  # a refused call still proves the path; speech is tested elsewhere
        "openai_api_key": "",
        "elevenlabs_api_key": "",
    }
    return Settings.model_validate(base | overrides)


@asynccontextmanager
async def bot_behind_tunnel(settings: Settings) -> AsyncIterator[tuple[StandInTunnel, Settings]]:
    async with stand_in_tunnel() as tunnel:
        settings = settings.model_copy(update={"public_url": tunnel.url})
        async with run_app(create_app(settings)) as base:
            tunnel.target_port = int(base.rsplit(":", 1)[1])
            yield tunnel, settings


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioRestFake]:
    async with TwilioRestFake(SID, TOKEN) as fake:
        yield fake


async def test_points_the_number_tests_it_and_is_safe_to_rerun(
    tmp_path: Path, twilio: TwilioRestFake
) -> None:
    pn = twilio.add_number(NUMBER)
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto")
    async with bot_behind_tunnel(settings) as (tunnel, settings):
        report = await connect_number(settings, tunnel.url)
        assert report.phone_number == NUMBER
        assert twilio.numbers[pn]["voice_url"] == f"{tunnel.url}/voice"
        assert twilio.numbers[pn]["status_callback"] == f"{tunnel.url}/status"
        assert report.changed == [
            f"voice webhook: (none) -> {tunnel.url}/voice",
            f"status callback: (none) -> {tunnel.url}/status",
        ]
        assert "media stream" in report.test
        assert len(twilio.number_updates()) == 1  # both webhooks in one request

        again = await connect_number(settings, tunnel.url)
        assert again.changed == []
        assert len(twilio.number_updates()) == 1


async def test_a_new_tunnel_address_replaces_the_previous_runs(
    tmp_path: Path, twilio: TwilioRestFake
) -> None:
    old = "https://old-tunnel.example"
    pn = twilio.add_number(NUMBER, voice_url=f"{old}/voice", status_callback=f"{old}/status")
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto")
    async with bot_behind_tunnel(settings) as (tunnel, settings):
        report = await connect_number(settings, tunnel.url)
    assert report.changed[0] == f"voice webhook: {old}/voice -> {tunnel.url}/voice"
    assert twilio.numbers[pn]["voice_url"] == f"{tunnel.url}/voice"


async def test_a_webhook_owned_by_another_server_needs_force(tmp_path: Path, twilio: TwilioRestFake) -> None:
    foreign = "https://crm.example.com/twilio/incoming"
    pn = twilio.add_number(NUMBER, voice_url=foreign)
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto")
    async with bot_behind_tunnel(settings) as (tunnel, settings):
        with pytest.raises(TwilioSetupError, match=r"crm\.example\.com.*--force"):
            await connect_number(settings, tunnel.url)
        assert twilio.numbers[pn]["voice_url"] == foreign
        assert twilio.number_updates() == []
        report = await connect_number(settings, tunnel.url, force=True)
    assert report.changed[0] == f"voice webhook: {foreign} -> {tunnel.url}/voice"


async def test_a_failed_test_request_puts_the_old_webhooks_back(
    tmp_path: Path, twilio: TwilioRestFake
) -> None:
    old = "https://old-tunnel.example"
    pn = twilio.add_number(NUMBER, voice_url=f"{old}/voice", status_callback=f"{old}/status")
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto")
    # The bot runs with another auth token: Twilio's requests (and the test's) would be refused.
    async with bot_behind_tunnel(settings.model_copy(update={"twilio_auth_token": SecretStr("other")})) as (
        tunnel,
        _,
    ):
        with pytest.raises(TwilioSetupError, match="rejected the signed test request"):
            await connect_number(settings.model_copy(update={"public_url": tunnel.url}), tunnel.url)
    assert twilio.numbers[pn]["voice_url"] == f"{old}/voice"
    assert twilio.numbers[pn]["status_callback"] == f"{old}/status"


async def test_a_bot_that_refuses_calls_is_reported(tmp_path: Path, twilio: TwilioRestFake) -> None:
    twilio.add_number(NUMBER)
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url)  # no speech-to-text
    async with bot_behind_tunnel(settings) as (tunnel, settings):
        with pytest.raises(TwilioSetupError, match="refuses calls"):
            await connect_number(settings, tunnel.url)


async def test_a_dead_tunnel_fails_clearly(tmp_path: Path, twilio: TwilioRestFake) -> None:
    pn = twilio.add_number(NUMBER)
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto")
    async with bot_behind_tunnel(settings) as (tunnel, settings):
        await tunnel.cut()
        with pytest.raises(TwilioSetupError, match="tunnel up"):
            await connect_number(settings, tunnel.url)
    assert twilio.numbers[pn]["voice_url"] == ""


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("wrong-token", "refused the credentials.*TWILIO_AUTH_TOKEN"),
        (429, "rate-limiting"),
        ("timeout", "did not answer within 1 s"),
        ("unknown-number", r"\+4999 is not a number of this Twilio account"),
        ("no-twilio", "cannot reach Twilio"),
    ],
)
async def test_twilio_faults_say_what_to_do_and_change_nothing(
    tmp_path: Path, twilio: TwilioRestFake, fault: object, message: str
) -> None:
    pn = twilio.add_number(NUMBER)
    overrides: dict[str, Any] = {"twilio_api_base_url": twilio.base_url}
    if fault == "wrong-token":
        overrides["twilio_auth_token"] = "wrong"
    elif fault == "unknown-number":
        overrides["twilio_phone_number"] = "+4999"
    elif fault == "no-twilio":
        overrides["twilio_api_base_url"] = "http://127.0.0.1:9"
    else:
        twilio.numbers_fault = fault  # type: ignore[assignment]
    settings = make_settings(tmp_path, public_url="https://bot.example", **overrides)
    with pytest.raises(TwilioSetupError, match=message):
        await connect_number(settings, settings.public_url, timeout_s=1.0)
    assert twilio.numbers[pn]["voice_url"] == ""
    assert twilio.number_updates() == []


async def test_the_command_serves_tunnels_connects_and_says_when_the_tunnel_dies(
    tmp_path: Path, twilio: TwilioRestFake
) -> None:
    pn = twilio.add_number(NUMBER)
    lines: list[str] = []
    connected, down = asyncio.Event(), asyncio.Event()
    tunnels: list[StandInTunnel] = []

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith("Call "):
            connected.set()
        if line.startswith("WARNING: the tunnel"):
            down.set()

    async with contextlib.AsyncExitStack() as stack:

        async def open_tunnel(host: str, port: int) -> Tunnel:
            tunnel = await stack.enter_async_context(stand_in_tunnel(port))
            tunnels.append(tunnel)
            return Tunnel(url=tunnel.url, close=tunnel.cut)

        settings = make_settings(
            tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto", port=free_port()
        )
        stop = asyncio.Event()
        command = asyncio.create_task(
            serve_connected(settings, open_tunnel=open_tunnel, say=say, watch_interval_s=0.2, stop=stop)
        )
        await asyncio.wait([command, asyncio.ensure_future(connected.wait())], return_when="FIRST_COMPLETED")
        assert connected.is_set(), lines
        [tunnel] = tunnels
        assert lines[0] == f"tunnel: {tunnel.url} -> http://127.0.0.1:{settings.port}"
        assert f"Call {NUMBER} now to talk to the bot." in lines
        assert twilio.numbers[pn]["voice_url"] == f"{tunnel.url}/voice"
        await tunnel.cut()
        await down.wait()
        stop.set()
        assert await command == 0


async def test_no_serve_points_a_number_at_a_bot_that_already_runs(
    tmp_path: Path, twilio: TwilioRestFake
) -> None:
    pn = twilio.add_number(NUMBER)
    settings = make_settings(tmp_path, twilio_api_base_url=twilio.base_url, stt_provider="auto")
    lines: list[str] = []
    async with bot_behind_tunnel(settings) as (tunnel, settings):
        assert await connect_only(settings, force=False, say=lines.append) == 0
        assert await connect_only(settings, force=False, say=lines.append) == 0
    assert twilio.numbers[pn]["voice_url"] == f"{tunnel.url}/voice"
    assert lines[0] == f"changed: voice webhook: (none) -> {tunnel.url}/voice"
    assert f"unchanged: {NUMBER} already sends its calls to {tunnel.url}/voice" in lines
    assert await connect_only(make_settings(tmp_path), force=False, say=lines.append) == 2
    assert lines[-1].startswith("error: --no-serve needs PUBLIC_URL")
