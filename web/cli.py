"""The ``voicebot`` command: ``serve`` the bot, ``check`` the configuration, and the developer tools."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

import click
import structlog

from media.errors import ConfigError
from web.cli_fakes import fakes
from web.settings import Settings, load_settings


def _settings_or_exit(env_file: Path, **overrides: object) -> Settings:
    try:
        return load_settings(env_file, **overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        sys.exit(2)


@click.group()
@click.option("--env-file", type=click.Path(path_type=Path), default=Path(".env"), show_default=True)
@click.pass_context
def main(ctx: click.Context, env_file: Path) -> None:
    """voicebot: a German-speaking phone customer-service bot for Twilio."""
    ctx.obj = env_file


@main.command()
@click.option("--host", default=None, help="Interface to bind (default: HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default: PORT or 8000).")
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes on the port."
)
@click.option("--reuse-port", is_flag=True, hidden=True, help="Bind with SO_REUSEPORT (one of --workers).")
@click.pass_obj
def serve(env_file: Path, host: str | None, port: int | None, workers: int, reuse_port: bool) -> None:
    """Start the bot (Litestar under uvicorn); SIGTERM drains calls before exiting."""
    from web.app import create_app
    from web.logging import configure_logging
    from web.serving import run_server, run_workers

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = _settings_or_exit(env_file, **overrides)
    if workers > 1:
        if not settings.redis_url:
            click.echo(
                f"error: --workers {workers} needs REDIS_URL: a call's /voice and /media may land on "
                "different workers, which must share stream tokens, the live-call count and console events",
                err=True,
            )
            sys.exit(2)
        sys.exit(run_workers(workers, env_file, settings.host, settings.port))
    configure_logging(fmt=settings.log_format, level=settings.log_level, secrets=_secrets(settings))
    try:
        app = create_app(settings)
    except ConfigError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        sys.exit(2)
    structlog.get_logger().info("listening", url=f"http://{settings.host}:{settings.port}")
    if sys.stderr.isatty():
        from web.banner import banner

        click.echo(banner(settings, app.state.ctx.providers), err=True)
    _freeze_startup_objects()
    run_server(app, settings.host, settings.port, reuse_port=reuse_port)


def _freeze_startup_objects() -> None:
    """Moves everything imported so far out of the cyclic collector's reach, as long-lived servers do.

    Modules, classes and SDK schemas are about 200,000 objects that never become garbage, yet every full
    collection walked them: with two hundred calls that was a pause of up to 140 ms every few seconds,
    long enough for the callers to hear a gap. The higher first threshold makes the young collections,
    which the 10,000 frames a second of two hundred calls triggered twenty times a second, rarer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def check(env_file: Path, as_json: bool) -> None:
    """Print the effective configuration (secrets masked) and which providers will be used."""
    from web.providers import build_providers

    settings = _settings_or_exit(env_file)
    try:
        providers = build_providers(settings)
    except ConfigError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        sys.exit(2)
    config = {k: _show(k, v) for k, v in settings.model_dump().items()}
    problems = []
    if not providers.ready:
        problems.append(
            "a call cannot be held: "
            + ", ".join(r for r, n in providers.describe().items() if n == "missing")
        )
    if not settings.public_url:
        problems.append("PUBLIC_URL is not set: Twilio cannot be told where to stream (/voice needs it)")
    refused = not (settings.signatures_enabled or settings.host_is_loopback or settings.allow_unsigned)
    if refused:
        problems.append(
            f"HOST={settings.host} without TWILIO_AUTH_TOKEN: serve refuses to start (ALLOW_UNSIGNED=1)"
        )
    report = {
        "config": config,
        "providers": providers.describe(),
        "notes": providers.missing,
        "problems": problems,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo("Configuration:")
        for key, value in config.items():
            click.echo(f"  {key.upper():<36} {value}")
        click.echo("Providers (active):")
        for role, name in providers.describe().items():
            click.echo(f"  {role:<5} {name}")
        if providers.profile is not None:
            click.echo(f"  business profile: {providers.profile.company_name}")
        for note in providers.missing:
            click.echo(f"note: {note}")
        for problem in problems:
            click.echo(f"problem: {problem}")
    sys.exit(1 if not providers.ready or refused else 0)


@main.command()
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds allowed per check.")
@click.pass_obj
def doctor(env_file: Path, timeout: float) -> None:
    """Check every configured provider with one real request; exit non-zero on any failure."""
    from web.doctor import run_from_cli

    sys.exit(run_from_cli(_settings_or_exit(env_file), timeout))


@main.command()
@click.option("--force", is_flag=True, help="Take over a number whose webhook points at another server.")
@click.option("--no-serve", is_flag=True, help="The bot already runs behind PUBLIC_URL: only point and test.")
@click.pass_obj
def connect(env_file: Path, force: bool, no_serve: bool) -> None:
    """Serve the bot, open a tunnel (or use PUBLIC_URL) and point the Twilio number at it."""
    from web.connect_cli import run

    settings = _settings_or_exit(env_file)
    from web.logging import configure_logging

    configure_logging(fmt=settings.log_format, level=settings.log_level, secrets=_secrets(settings))
    sys.exit(run(settings, force, serve=not no_serve))


def _simulate_command() -> click.Command:
    from simulator.cli import simulate

    return simulate


main.add_command(_simulate_command(), "simulate")


def _scenarios_command() -> click.Group:
    from web.scenarios_cli import scenarios

    return scenarios


main.add_command(_scenarios_command(), "scenarios")
main.add_command(fakes)


def _show(key: str, value: object) -> str:
    from media.privacy import mask_url_credentials

    text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if any(s in key for s in ("key", "token", "password", "secret")):
        return "***set***" if text else "(not set)"
    return mask_url_credentials(str(text)) if text not in ("", None) else "(not set)"


@main.command()
@click.pass_obj
def purge(env_file: Path) -> None:
    """Delete calls, transcripts and recordings older than RETENTION_DAYS, and say how many."""
    import asyncio

    from web.retention import purge as run_purge
    from web.retention import with_store

    settings = _settings_or_exit(env_file)
    result: Any = asyncio.run(with_store(settings, lambda store: run_purge(settings, store)))
    counts = ", ".join(f"{n} {what}" for what, n in result.summary().items())
    click.echo(f"purged (older than {settings.retention_days:g} days): {counts}")


@main.command()
@click.pass_obj
def migrate(env_file: Path) -> None:
    """Bring the call store's schema (SQLite or PostgreSQL) to the newest revision, and say which."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from console import migrate as migrations
    from console.store import async_url

    settings = _settings_or_exit(env_file)
    url = async_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> str:
        engine = create_async_engine(url)
        try:
            return await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    revision = asyncio.run(run())
    click.echo(f"call store schema at revision {revision} ({url.split(':', 1)[0]})")


@main.command()
@click.option("--caller", required=True, help="The caller's number as Twilio gives it, e.g. +4930123456.")
@click.pass_obj
def forget(env_file: Path, caller: str) -> None:
    """Delete every call of one caller (GDPR Art. 17): records, transcripts, recordings."""
    import asyncio

    from web.retention import forget as run_forget
    from web.retention import with_store

    settings = _settings_or_exit(env_file)
    if not any(c.isdigit() for c in caller):
        click.echo("error: --caller must be a phone number", err=True)
        sys.exit(2)
    result: Any = asyncio.run(with_store(settings, lambda store: run_forget(settings, store, caller)))
    counts = ", ".join(f"{n} {what}" for what, n in result.summary().items())
    click.echo(f"deleted for this caller: {counts}")


def _secrets(settings: Settings) -> list[str]:
    return [
        settings.openai_api_key.get_secret_value(),
        settings.elevenlabs_api_key.get_secret_value(),
        settings.twilio_auth_token.get_secret_value(),
        settings.console_password.get_secret_value(),
        settings.secret_key.get_secret_value(),
        settings.twilio_webhook_key.get_secret_value(),
        *_url_passwords(settings.database_url, settings.redis_url),
        settings.llm_fallback_api_key.get_secret_value(),
        settings.metrics_token.get_secret_value(),
        settings.ngrok_authtoken.get_secret_value(),
    ]


def _url_passwords(*urls: str) -> list[str]:
    from urllib.parse import urlsplit

    return [p for p in (urlsplit(u).password if "://" in u else None for u in urls) if p]
