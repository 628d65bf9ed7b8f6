"""``voicebot scenarios run PATH…``: a tester's call scenarios against the bot, with a report for CI."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from simulator.scenario_spec import ScenarioError, load_paths


@click.group("scenarios")
def scenarios() -> None:
    """Call scenarios written in YAML (see README, "Call scenarios")."""


@scenarios.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--url", default=None, help="A running bot (e.g. http://127.0.0.1:8000); default: start one on fakes."
)
@click.option("--public-url", default=None, help="With --url: the bot's PUBLIC_URL (signatures are over it).")
@click.option(
    "--auth-token", envvar="TWILIO_AUTH_TOKEN", default=None, help="With --url: signs as Twilio would."
)
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write JSON here.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the tables.")
def run(
    paths: tuple[Path, ...],
    url: str | None,
    public_url: str | None,
    auth_token: str | None,
    junit: Path | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Runs every scenario (files, or directories of *.yaml) as a phone call; exits 1 on any failure."""
    from simulator.scenario_report import summary, table, write_json, write_junit
    from web.logging import configure_logging
    from web.scenario_runner import run_against_url, run_in_process

    try:
        loaded = load_paths(list(paths))
    except ScenarioError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    configure_logging(fmt="json", level="warning")
    progress = None if quiet else (lambda line: click.echo(f"  … {line}", err=True))
    where = url or "a bot on loopback fakes"
    click.echo(f"running {len(loaded)} scenario(s) against {where}", err=True)
    if url:
        results = asyncio.run(
            run_against_url(loaded, url, public_url=public_url, auth_token=auth_token, progress=progress)
        )
    else:
        results = asyncio.run(run_in_process(loaded, progress=progress))
    for result in results:
        click.echo(table(result) + "\n")
    click.echo(summary(results))
    if junit:
        write_junit(results, junit)
    if json_path:
        write_json(results, json_path)
    sys.exit(0 if all(r.ok for r in results) else 1)
