"""``voicebot fakes``: the loopback fakes of the OpenAI and ElevenLabs APIs, served from the command line.

A developer and benchmark tool that needs no configuration (it reads no ``.env``), so it stands apart from
the commands that run or inspect the bot; ``web.cli`` registers it on the ``voicebot`` group.
"""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8100, show_default=True, help="Port (0 picks a free one).")
@click.option("--stt-ms", type=float, default=0.0, show_default=True, help="Transcription latency.")
@click.option("--realtime-ms", type=float, default=0.0, show_default=True, help="Realtime final.")
@click.option("--llm-ms", type=float, default=0.0, show_default=True, help="Chat time to first token.")
@click.option("--llm-token-ms", type=float, default=0.0, show_default=True, help="Chat time per token.")
@click.option("--tts-ms", type=float, default=0.0, show_default=True, help="Speech time to first byte.")
@click.option("--tts-chunk-ms", type=float, default=0.0, show_default=True, help="Speech time per 100 ms.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
def fakes(
    host: str,
    port: int,
    stt_ms: float,
    realtime_ms: float,
    llm_ms: float,
    llm_token_ms: float,
    tts_ms: float,
    tts_chunk_ms: float,
    log_level: str,
) -> None:
    """Serve loopback fakes of the OpenAI and ElevenLabs APIs (point *_BASE_URL at them)."""
    import asyncio
    import contextlib

    from fakes.behaviour import FakeBehaviour
    from fakes.server import serve_forever
    from web.logging import configure_logging

    configure_logging(fmt="console", level=log_level, secrets=[])
    behaviour = FakeBehaviour()
    behaviour.pace("stt", ttfb_ms=stt_ms)
    behaviour.pace("realtime", ttfb_ms=realtime_ms)
    behaviour.pace("chat", ttfb_ms=llm_ms, per_token_ms=llm_token_ms)
    behaviour.pace("tts", ttfb_ms=tts_ms, per_token_ms=tts_chunk_ms)
    behaviour.requests = _Forgetful()  # a long benchmark must not keep every request it served
    base = f"http://{host}:{port}"
    click.echo(f"OPENAI_BASE_URL={base}/v1  ELEVENLABS_BASE_URL={base}  (any non-empty key is accepted)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, behaviour))


class _Forgetful(list):  # type: ignore[type-arg]
    """The fakes' request log, kept empty when served from the command line (no test reads it)."""

    def append(self, _item: object) -> None:
        return
