"""structlog set-up: JSON lines in production, readable lines on a terminal, secrets never printed.

``call_sid`` and ``stream_sid`` are bound with ``structlog.contextvars`` by the call session once per call,
so every line logged inside that call's tasks carries them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from media.privacy import mask_phone

__all__ = ["SecretMasker", "configure_logging", "mask_phone"]

_SECRET_KEYS = re.compile(r"(api_key|auth_token|password|secret|token|authorization|signature)", re.I)
_PHONE = re.compile(r"\+?\d[\d \-/]{6,}\d")
_PHONE_KEYS = {"caller", "from_", "from", "to", "called", "number", "transfer_number"}


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if _SECRET_KEYS.search(key) and value:
            return "***"
        if key.lower() in _PHONE_KEYS:
            return mask_phone(value)
        return _PHONE.sub(lambda m: mask_phone(m.group(0)), value) if _looks_like_phone_text(value) else value
    return value


def _looks_like_phone_text(value: str) -> bool:
    return "+" in value and any(c.isdigit() for c in value)


class SecretMasker:
    """A structlog processor that masks secrets by key and phone numbers by key or by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(
        self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            masked = _mask_value(key, value)
            if isinstance(masked, str):
                for secret in self._secrets:
                    if secret in masked:
                        masked = masked.replace(secret, "***")
            event_dict[key] = masked
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
        SecretMasker(secrets),
    ]
    _route_stdlib(shared, renderer, level)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
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


def _route_stdlib(shared: list[Any], renderer: Any, level: str) -> None:
    """Lines from libraries that use ``logging`` get the same shape, the call's ids and the same masking."""
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
