"""The SSE streams and the local-only policy against a real uvicorn server (real sockets, real lifespan)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from dialogue.events import CallEvent
from tests.console.conftest import PASSWORD, call_events, log_in_async
from tests.support.server import run_app
from web.app import create_app
from web.console_routes import LOGIN_URL_FILE, Console
from web.context import AppContext
from web.settings import Settings


async def sse_events(resp: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    name, data = "", []
    async for line in resp.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and name:
            yield name, "\n".join(data)
            name, data = "", []


async def collect_until(resp: httpx.Response, stop: str, into: list[tuple[str, str]]) -> None:
    async for item in sse_events(resp):
        into.append(item)
        if item[0] == stop:
            return


async def test_two_browsers_watch_one_call_live_until_it_ends(tmp_path: Path) -> None:
    app = create_app(Settings(stt_provider="none", data_dir=tmp_path, console_password=PASSWORD))
    ctx: AppContext = app.state.ctx
    events: list[CallEvent] = call_events("CAsse", t0=time.time())
    async with run_app(app) as base, httpx.AsyncClient(base_url=base) as web:
        assert (await log_in_async(web)).status_code == 303
        hub = ctx.extras[Console.EXTRAS_KEY].hub
        with hub.watch("CAsse") as probe:  # the call has started before anyone watches
            ctx.sink.publish(events[0])
            await probe.next_batch()
        seen: list[list[tuple[str, str]]] = [[], []]
        async with (
            web.stream("GET", "/console/calls/CAsse/events") as first,
            web.stream("GET", "/console/calls/CAsse/events") as second,
        ):
            assert first.headers["content-type"].startswith("text/event-stream")
            readers = [
                asyncio.create_task(collect_until(r, "ended", into))
                for r, into in zip((first, second), seen, strict=True)
            ]
            for event in events[1:]:
                ctx.sink.publish(event)
                await asyncio.sleep(0.005)
            await asyncio.wait_for(asyncio.gather(*readers), timeout=10)
        for watched in seen:
            names = [n for n, _ in watched]
            assert names[:8] == [
                "summary",
                "state",
                "transitions",
                "transcript",
                "latency",
                "speech",
                "protocol",
                "downloads",
            ]
            states = [d.split('data-state="')[1].split('"')[0] for n, d in watched if n == "state"]
            assert states[0] == "greeting"  # the snapshot: only the start was known
            assert states[1:8] == [
                "listening",
                "transcribing",
                "thinking",
                "speaking",
                "barge_in",
                "listening",
                "hangup",
            ]
            transcript = [d for n, d in watched if n == "transcript"][-1]
            assert "Wann haben Sie geöffnet?" in transcript
            assert "interrupted" in transcript
            assert any(n == "latency" and "700 ms" in d for n, d in watched)
            assert names[-2:] == ["downloads", "ended"]


async def test_calls_list_stream_shows_new_calls_and_moves_ended_ones_to_history(tmp_path: Path) -> None:
    app = create_app(Settings(stt_provider="none", data_dir=tmp_path, console_password=PASSWORD))
    ctx: AppContext = app.state.ctx
    async with run_app(app) as base, httpx.AsyncClient(base_url=base) as web:
        await log_in_async(web)
        async with web.stream("GET", "/console/events") as resp:
            stream = sse_events(resp)
            assert (await anext(stream))[0] == "live"
            assert (await anext(stream))[0] == "history"
            events = call_events("CAlist", t0=time.time())
            for event in events[:-1]:
                ctx.sink.publish(event)
            name, data = await asyncio.wait_for(anext(stream), 5)
            assert name == "live"
            assert 'data-call="CAlist"' in data
            ctx.sink.publish(events[-1])
            async with asyncio.timeout(5):
                while (item := await anext(stream))[0] != "history":
                    pass
            assert 'data-call="CAlist"' in item[1]


async def test_without_password_even_a_loopback_client_needs_the_start_up_token(tmp_path: Path) -> None:
    app = create_app(Settings(stt_provider="none", data_dir=tmp_path))
    async with run_app(app) as base, httpx.AsyncClient(base_url=base) as web:
        assert (await web.get("/console")).status_code == 401  # a tunnel or proxy would look just like this
        url = (tmp_path / LOGIN_URL_FILE).read_text().strip()
        token = url.split("token=", 1)[1]
        assert (await web.get(f"/console/login?token={token}")).status_code == 303
        assert (await web.get("/console")).status_code == 200
