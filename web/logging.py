"""structlog set-up: JSON lines in production, readable lines on a terminal, secrets never printed.

``call_sid`` and ``stream_sid`` are bound with ``structlog.contextvars`` by the call session once per call,
so every line logged inside that call's tasks carries them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any

import structlog

from media.privacy import mask_digit_runs, mask_phone, mask_url_credentials

__all__ = ["SecretMasker", "configure_logging", "mask_phone"]

_SECRET_KEYS = re.compile(
    r"(api_key|auth_token|password|passwd|secret|token|authorization|signature|cookie|credential)", re.I
)
_PHONE = re.compile(r"\+?\d[\d \-/]{6,}\d")
_PHONE_KEYS = {"caller", "from_", "from", "to", "called", "number", "transfer_number"}
_MAX_DEPTH = 6


_OWN_KEYS = frozenset({"timestamp", "level", "logger"})
"""Set by the logging pipeline itself: never personal data, skipped for speed."""
_ID_KEYS = frozenset({"call_sid", "stream_sid", "trigger", "source", "dest"})
_ID_SHAPE = re.compile(r"[A-Za-z][A-Za-z_]?[0-9A-Za-z_]{0,62}")
"""Ids and state names, skipped when shaped like one (``CA…``, ``listening``); a call id taken from an
unverified request may be anything, so other values are masked as usual."""
_SIX_DIGITS = re.compile(r"\d(?:\D?\d){5}")


def _mask_text(text: str, secrets: list[str]) -> str:
    """Most values (states, ids, short words) hold neither ``@`` nor six digits: they cost two searches."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if "@" in text:
        text = mask_url_credentials(text)
    if _SIX_DIGITS.search(text) is None:
        return text
    if "+" in text:
        text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return mask_digit_runs(text)


def _mask_value(key: str, value: Any, secrets: list[str], depth: int = 0) -> Any:
    """Masks by key and by shape, into dicts, lists and tuples; other objects are rendered and masked, so
    nothing reaches the renderer that was not looked at."""
    if isinstance(value, str):
        if _SECRET_KEYS.search(key) and value:
            return "***"
        if key.lower() in _PHONE_KEYS:
            return mask_phone(value)
        return _mask_text(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v, secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(key, v, secrets, depth + 1) for v in value]
    if isinstance(value, BaseException):  # exc_info=exc: rendered later, so render and mask it now
        return value
    return _mask_value(key, repr(value) if not isinstance(value, Path) else str(value), secrets, depth + 1)


class SecretMasker:
    """A structlog processor that masks secrets (by key, by value, in URLs), phone numbers and dictated
    digit runs, recursively. It runs after ``format_exc_info``, so exception text is masked too."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)

    def __call__(
        self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            if key in _OWN_KEYS or key in ("exc_info", "_record", "_from_structlog"):
                continue
            if key in _ID_KEYS and isinstance(value, str) and _ID_SHAPE.fullmatch(value):
                continue
            event_dict[key] = _mask_value(key, value, self._secrets)
        return event_dict


def configure_logging(*, fmt: str = "auto", level: str = "info", secrets: Iterable[str] = ()) -> None:
    """Idempotent; called by the CLI before the app starts, and by tests that want real output."""
    renderer: Any
    if fmt == "json" or (fmt == "auto" and not sys.stderr.isatty()):
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    masker = SecretMasker(secrets)
    _route_stdlib(shared, masker, renderer, level)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, masker, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        # One write per line: with ``--workers N`` every process writes to the same stderr, which Python
        # leaves unbuffered on a pipe, and ``print`` (the print logger) writes the line and its newline
        # separately, so another worker's line could land in between and break both JSON lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


QUIET_LIBRARIES: tuple[str, ...] = (
    "transitions",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "elevenlabs",
)
"""Libraries that log routine work at INFO: one line per HTTP request or per state-machine callback. Our own
``provider_*`` and ``state_changed`` events say what matters once; at two hundred calls these lines were a
thread's worth of CPU. Their warnings and errors still come through."""


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the line, as structlog's print logger does."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _route_stdlib(shared: list[Any], masker: SecretMasker, renderer: Any, level: str) -> None:
    """Lines from libraries that use ``logging`` get the same shape, the call's ids and the same masking."""
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                masker,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
