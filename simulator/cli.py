"""``voicebot simulate``: plays Twilio against a running bot, many calls at once, and measures it.

Each call is placed like Twilio places it (``POST /voice``, signed when given the auth token, then the
``<Stream>`` URL from the TwiML over a WebSocket) and speaks Media Streams in real time. Figures per turn:
response latency (the caller's last voiced frame → the bot's first audio after it), barge-in reaction
(caller speech onset over the bot → ``clear``), underruns (the bot's audio ran dry mid-reply) and protocol
errors. Progress goes to stderr, the summary to stdout, everything per call to ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from simulator.scenarios import SCENARIOS, Scenario


async def _run(
    load: Any, *, quiet: bool, overhead_base_ms: float | None
) -> tuple[dict[str, Any], list[dict[str, object]]]:
    from simulator.caller import FrameClock
    from simulator.load import LoadConfig, LoadProgress, run_load
    from simulator.report import ProgressLine, distribution_ms, summarize

    assert isinstance(load, LoadConfig)
    t0, cpu0 = time.monotonic(), time.process_time()
    progress = LoadProgress(started_at=t0)
    line = ProgressLine(progress, load.concurrency)
    clock = FrameClock()

    async def show() -> None:
        every = 1.0 if sys.stderr.isatty() else 5.0
        while True:
            await asyncio.sleep(every)
            line.show()

    ticker = None if quiet else asyncio.create_task(show())
    try:
        results = await run_load(load, progress=progress, frame_clock=clock)
    finally:
        if ticker is not None:
            ticker.cancel()
        await clock.close()
    if not quiet:
        line.finish()
    wall = time.monotonic() - t0
    extra = {
        "scenario": load.scenario.scenario,
        "concurrency": load.concurrency,
        "simulator_cpu_percent": round((time.process_time() - cpu0) / wall * 100, 1),
        "frame_lag_ms": distribution_ms(clock.lag),
    }
    summary = summarize(results, wall_s=wall, overhead_base_ms=overhead_base_ms, extra=extra)
    return summary, [r.to_json() for r in results]


@click.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Where the bot listens.")
@click.option(
    "--public-url",
    default=None,
    help="The URL the bot believes it has (PUBLIC_URL), for signatures behind a tunnel. Default: --url.",
)
@click.option(
    "--auth-token",
    envvar="TWILIO_AUTH_TOKEN",
    default=None,
    help="Sign /voice and the stream like Twilio (default: $TWILIO_AUTH_TOKEN; unset: unsigned).",
)
@click.option("--scenario", type=click.Choice(SCENARIOS), default="turns", show_default=True)
@click.option(
    "--calls",
    "concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Concurrent calls.",
)
@click.option(
    "--ramp-up",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds over which the calls are started evenly.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds of load after the ramp-up; then every call hangs up.",
)
@click.option(
    "--total-calls",
    type=click.IntRange(min=1),
    default=None,
    help="Place this many calls in all, back to back (e.g. 1000 with --calls 1).",
)
@click.option(
    "--max-call-s",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Hang each call up after this many seconds.",
)
@click.option(
    "--turns",
    "max_turns",
    type=click.IntRange(min=0),
    default=None,
    help="Caller turns per call (default: until the call ends).",
)
@click.option(
    "--wav",
    "wavs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Caller utterance (repeatable); default: German sentences from eSpeak.",
)
@click.option(
    "--interruption-wav",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="What the caller says when barging in (bargein).",
)
@click.option(
    "--pause-ms",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Caller's pause after the bot finished, before speaking again.",
)
@click.option(
    "--interrupt-after-ms",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="bargein: how far into the reply the caller starts talking.",
)
@click.option("--digits", default="0", show_default=True, help="dtmf: the keys pressed, in turn.")
@click.option(
    "--overhead-base-ms",
    type=float,
    default=None,
    help="Report overhead = response latency − this (end of turn + provider latencies).",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the summary and every call's figures as JSON here ('-': stdout).",
)
@click.option("--quiet", is_flag=True, help="No progress line on stderr.")
def simulate(
    url: str,
    public_url: str | None,
    auth_token: str | None,
    scenario: Scenario,
    concurrency: int,
    ramp_up: float,
    duration: float,
    total_calls: int | None,
    max_call_s: float | None,
    max_turns: int | None,
    wavs: tuple[Path, ...],
    interruption_wav: Path | None,
    pause_ms: int,
    interrupt_after_ms: int,
    digits: str,
    overhead_base_ms: float | None,
    json_out: Path | None,
    quiet: bool,
) -> None:
    """Play Twilio against a running bot: concurrent calls, real-time Media Streams, measured per turn.

    Exits 1 if any call failed or the bot broke the protocol.
    """
    from simulator.load import LoadConfig
    from simulator.report import format_summary
    from simulator.scenarios import (
        DEFAULT_INTERRUPTION,
        DEFAULT_UTTERANCES,
        ScenarioConfig,
        Speech,
        WavError,
        load_wav,
        speech_ulaw,
    )

    if scenario == "dtmf" and (not digits or any(d not in "0123456789*#" for d in digits)):
        raise click.BadParameter("digits must be among 0-9 * #", param_hint="--digits")
    try:
        utterances = [Speech.of(load_wav(p)) for p in wavs]
        interruption = Speech.of(load_wav(interruption_wav)) if interruption_wav else None
    except WavError as exc:
        raise click.BadParameter(str(exc)) from None
    if scenario in ("turns", "bargein") and not utterances:
        utterances = [Speech.of(speech_ulaw(text)) for text in DEFAULT_UTTERANCES]
    if scenario == "bargein" and interruption is None:
        interruption = Speech.of(speech_ulaw(DEFAULT_INTERRUPTION))
    load = LoadConfig(
        base_url=url.rstrip("/"),
        public_url=(public_url or url).rstrip("/"),
        auth_token=auth_token or None,
        concurrency=concurrency,
        ramp_up_s=ramp_up,
        duration_s=duration,
        total_calls=total_calls,
        max_call_s=max_call_s,
        scenario=ScenarioConfig(
            scenario=scenario,
            utterances=tuple(utterances),
            interruption=interruption,
            pause_s=pause_ms / 1000,
            interrupt_after_s=interrupt_after_ms / 1000,
            digits=digits,
            max_turns=max_turns,
        ),
    )
    summary, calls = asyncio.run(_run(load, quiet=quiet, overhead_base_ms=overhead_base_ms))
    if json_out is not None:
        text = json.dumps({"summary": summary, "calls": calls}, indent=1, ensure_ascii=False)
        if str(json_out) == "-":
            click.echo(text)
        else:
            json_out.write_text(text + "\n")
    if json_out is None or str(json_out) != "-":
        click.echo(format_summary(summary))
    sys.exit(1 if summary["failed_calls"] or summary["protocol_errors"] else 0)
