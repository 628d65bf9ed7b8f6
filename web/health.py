"""Liveness and readiness: a load balancer asks the first, an operator or Twilio set-up the second."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from console.auth import Access
from web.calls import TwilioEdge
from web.console_routes import console_access
from web.context import AppContext
from web.drain import draining


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    """Anonymous callers learn only ready, loading or not ready (a load balancer waits out "loading"); the
    detail (engines, whether webhooks are signature-checked) helps an attacker, so it needs a console
    login."""
    ctx: AppContext = request.app.state.ctx
    providers = ctx.providers.describe()
    reasons = [f"{role} provider missing" for role, name in providers.items() if name == "missing"]
    reasons += ctx.providers.loading()
    if draining(ctx):  # a proxy stops sending new calls here; running ones finish
        reasons.append("draining")
    status = "ready" if not reasons else "not_ready"
    if reasons and all(r.startswith("stt loading") for r in reasons):
        status = "loading"  # will become ready by itself: a load balancer should just wait
    code = HTTP_200_OK if not reasons else HTTP_503_SERVICE_UNAVAILABLE
    if console_access(request) is not Access.ALLOWED:
        return Response({"ready": not reasons, "status": status}, status_code=code)
    body: dict[str, object] = {
        "ready": not reasons,
        "status": status,
        "providers": providers,
        "notes": list(ctx.providers.missing),
        "signatures": "enabled" if ctx.settings.signatures_enabled else "disabled",
        "public_url": ctx.settings.public_url or None,
        "instance": TwilioEdge.of(ctx).fleet.instance,
        "draining": draining(ctx),
    }
    if reasons:
        body["reasons"] = reasons
    return Response(body, status_code=code)


ROUTES = [health, ready]
