"""Console pages and downloads: the calls list, one call, its transcript and its recording."""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import File
from litestar.status_codes import HTTP_409_CONFLICT

from console.store import CallSummary
from console.views import CallView, transcript_document
from media.recording import recording_path
from web.console_routes import Console


async def call_history(console: Console, limit: int = 50) -> list[CallSummary]:
    """Stored calls; this instance's just-ended ones take precedence (the writer may lag by a batch)."""
    recent = {v.call_sid: CallSummary.of(v) for v in console.hub.live.ended()}
    for row in await console.store.recent_calls(limit):
        if row.ended_at is not None or console.hub.live.get(row.call_sid) is None:
            recent.setdefault(row.call_sid, row)
    live = {v.call_sid for v in console.hub.live.live()}
    rows = [r for r in recent.values() if r.call_sid not in live]
    return sorted(rows, key=lambda r: -r.started_at)[:limit]


async def find_call(console: Console, call_sid: str) -> CallView:
    view = console.hub.live.get(call_sid)
    if view is not None and view.live:
        return view
    await console.store.flush()
    stored = await console.store.load_call(call_sid)
    if stored is not None:
        return stored
    if view is not None:
        return view
    raise NotFoundException(f"no call {call_sid}")


@get("/")
async def calls_page(console: NamedDependency[Console]) -> Response[str]:
    return console.html("calls.html", live=console.hub.live.live(), history=await call_history(console))


@get("/calls/{call_sid:str}")
async def call_page(console: NamedDependency[Console], call_sid: FromPath[str]) -> Response[str]:
    return console.html("call.html", view=await find_call(console, call_sid))


@get("/browser-call", sync_to_thread=False)
def browser_call_page(console: NamedDependency[Console]) -> Response[str]:
    """A fresh call id per page: the page watches this call's events before the call exists."""
    call_sid = "BR" + uuid.uuid4().hex
    view = CallView(call_sid, transport="browser", state="idle")
    return console.html("browser_call.html", view=view, stream_sid="MZ" + uuid.uuid4().hex)


@get("/calls/{call_sid:str}/transcript.json")
async def transcript_json(console: NamedDependency[Console], call_sid: FromPath[str]) -> Response[str]:
    document = transcript_document(await find_call(console, call_sid))
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type=MediaType.JSON,
        headers={"Content-Disposition": f'attachment; filename="{call_sid}-transcript.json"'},
    )


@get("/calls/{call_sid:str}/recording.wav")
async def recording_wav(console: NamedDependency[Console], call_sid: FromPath[str]) -> File:
    view = console.hub.live.get(call_sid)
    if view is not None and view.live:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail="the call is still running")
    path = recording_path(console.recordings, call_sid)
    if not path.is_file():
        raise NotFoundException("no recording for this call")
    return File(path=path, filename=f"{call_sid}.wav", media_type="audio/wav")


ROUTES: list[Any] = [calls_page, call_page, browser_call_page, transcript_json, recording_wav]
