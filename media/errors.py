"""One root exception for the whole bot, so callers can catch ours without catching everything."""

from __future__ import annotations


class VoicebotError(Exception):
    """Root of every error we raise on purpose; ``detail`` is safe to log and show (never a secret)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(VoicebotError):
    """The configuration cannot work; the detail names the variable."""


class ProtocolError(VoicebotError):
    """A peer sent something the wire protocol does not allow; the call goes on."""


class ProviderError(VoicebotError):
    """A speech or language provider failed.

    ``retryable`` tells the caller whether another attempt within the stage's budget may succeed
    (timeouts, 429, 5xx, a reset mid-stream) or is pointless (401, 400, a malformed request).
    """

    def __init__(self, stage: str, detail: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.retryable = retryable
        self.status = status
