"""`startbox ui`: the Streamlit chat page as a headless server, a client of `startbox api`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)
APP = Path(__file__).with_name("app.py")
STOP_TIMEOUT = 20.0  # seconds Streamlit gets to exit once stopped, before it is killed


def streamlit_command(host: str, port: int) -> list[str]:
    """`streamlit run` with everything that phones out or watches files turned off."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def run_ui(
    api_url: str = typer.Option(
        None,
        envvar="STARTBOX_UI_API_URL",
        help="`startbox api` base URL (default http://127.0.0.1:8000).",
    ),
    api_key: str = typer.Option(
        None, envvar="STARTBOX_UI_API_KEY", help="One of the API's STARTBOX_API_KEYS."
    ),
    host: str = typer.Option(
        None,
        envvar="STARTBOX_UI_HOST",
        help="Interface to listen on (default 127.0.0.1; 0.0.0.0 in a container).",
    ),
    port: int = typer.Option(
        None, envvar="STARTBOX_UI_PORT", help="Port to listen on (default 8501)."
    ),
) -> None:
    """Serve the chat UI: ask questions, watch the trace live, reopen past runs.

    It only talks to the REST API over HTTP, so it can run on another machine or container.

    Example: startbox ui --api-url http://127.0.0.1:8000 --api-key KEY --port 8501
    """
    from pydantic import ValidationError

    from ui.client import ApiClient, ApiError
    from ui.settings import UiSettings

    overrides: dict[str, Any] = {"api_url": api_url, "api_key": api_key, "host": host, "port": port}
    try:
        settings = UiSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    with ApiClient(settings.api_url, settings.api_key, timeout=3) as api:
        try:
            api.health()
            console.print(f"API at {settings.api_url}: ok")
        except ApiError as exc:  # the API may start after the UI (compose): warn, serve anyway
            console.print(f"[yellow]warning:[/] {exc}")
    values = settings.model_dump(exclude_none=True)
    env = {**os.environ, **{f"STARTBOX_UI_{k.upper()}": str(v) for k, v in values.items()}}
    shown = "localhost" if settings.host in ("127.0.0.1", "::1") else settings.host
    console.print(f"UI on http://{shown}:{settings.port} (Ctrl-C stops it)")
    process = subprocess.Popen(streamlit_command(settings.host, settings.port), env=env)
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, `kill`: stop Streamlit too
    try:
        code = process.wait()  # a server: it runs until it is stopped
    except KeyboardInterrupt:
        process.terminate()
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=STOP_TIMEOUT)
    raise typer.Exit(code)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C, so the Streamlit child is stopped rather than left orphaned."""
    raise KeyboardInterrupt
