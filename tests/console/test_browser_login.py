"""The console refuses pages, streams and the phone socket without a login, in a real browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from fakes.server import run_fake_providers
from tests.console.browser import Bot, bot_process, launch, logged_in, require_chromium, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    require_chromium()
    async with run_fake_providers() as fakes, bot_process(tmp_path, fakes) as bot:
        yield bot


async def test_login_is_required_for_pages_streams_and_the_phone_socket(bot: Bot) -> None:
    async with async_playwright() as pw:
        browser = await launch(pw)
        context = await browser.new_context(base_url=bot.base_url, viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        await page.goto("/console/calls/CA0123")
        assert "/console/login?next=/console/calls/CA0123" in page.url
        assert await page.locator("input[type=password]").count() == 1
        await screenshot(page, "login.png")

        probes = await page.evaluate(
            """async () => {
                const sse = await fetch('/console/events', {headers: {accept: 'text/event-stream'}});
                const sid = 'BR' + '0'.repeat(32);
                const token = await fetch(`/console/browser-call/${sid}/token`, {method: 'POST'});
                const socket = await new Promise((resolve) => {
                    const ws = new WebSocket(`ws://${location.host}/console/phone`);
                    ws.onopen = () => resolve('open');
                    ws.onclose = (e) => resolve(`closed ${e.code}`);
                });
                return {sse: sse.status, token: token.status, socket};
            }"""
        )
        # no session: the stream is refused, the token POST fails its CSRF check, the socket its upgrade
        assert probes == {"sse": 401, "token": 403, "socket": "closed 1006"}

        await page.fill("input[name=password]", "wrong")
        await page.click('form[action="/console/login"] button')
        assert await page.locator("text=Wrong password.").count() == 1
        await context.close()

        context, page = await logged_in(browser, bot)
        assert page.url.endswith("/console")
        opened = await page.evaluate(
            """() => new Promise((resolve) => {
                const ws = new WebSocket(`ws://${location.host}/console/phone`);
                ws.onopen = () => { ws.close(); resolve('open'); };
                ws.onclose = (e) => resolve(`closed ${e.code}`);
            })"""
        )
        assert opened == "open"
        await browser.close()
