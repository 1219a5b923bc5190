"""`startbox stack ...`: the whole stack of compose.yaml (model, API, workers, Redis, UI)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from startbox.stack import PROJECT, Progress, Stack, StackError

app = typer.Typer(help="The whole stack with docker compose, built offline.", no_args_is_help=True)
console = Console(stderr=True)

Home = Annotated[
    Path,
    typer.Option(envvar="STARTBOX_HOME", help="startbox's data directory (the API key's home)."),
]
Project = Annotated[
    str,
    typer.Option(
        envvar="STARTBOX_STACK_PROJECT",
        help="Compose project name: containers, network and data volume are named after it.",
    ),
]
DEFAULT_HOME = Path.home() / ".cache" / "startbox"
PRINT_EVERY = 10.0  # seconds between progress lines when the output is not a terminal


def _steps(status: Status, label: str) -> tuple[float, Progress]:
    """When the step started, and a progress callback that shows the time spent in it: on a
    terminal as the status line, elsewhere (CI, a log) as a line every 10 s at most."""
    started = time.monotonic()
    printed = [-PRINT_EVERY]

    def show(line: str) -> None:
        text = f"{label} ({time.monotonic() - started:.0f} s): {escape(line[-140:])}"
        if console.is_terminal:
            status.update(text)
        elif time.monotonic() - printed[0] >= PRINT_EVERY or line.startswith("$ "):
            printed[0] = time.monotonic()
            console.print(text, soft_wrap=True, highlight=False)

    return started, show


@app.command()
def build(home: Home = DEFAULT_HOME, project: Project = PROJECT) -> None:
    """Build the stack's images (about 6 minutes the first time on 2 cores, seconds after).

    With a registry, STARTBOX_STACK_BASE=python:3.11-slim-bookworm skips the debootstrap base.
    Example: startbox stack build
    """
    from startbox.stack import build as build_stack

    stack = Stack(home=home, project=project)
    with console.status("building the stack") as status:
        started, show = _steps(status, "building the stack")
        try:
            build_stack(stack, show)
        except StackError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print(
        f"[green]built[/] startbox-app and startbox-cpu, tag {stack.tag} "
        f"(STARTBOX_STACK_TAG), in {time.monotonic() - started:.0f} s"
    )


@app.command()
def up(
    home: Home = DEFAULT_HOME,
    project: Project = PROJECT,
    api_port: Annotated[
        int, typer.Option(envvar="STARTBOX_STACK_API_PORT", help="API port published on loopback.")
    ] = 8000,
    ui_port: Annotated[
        int, typer.Option(envvar="STARTBOX_STACK_UI_PORT", help="UI port published on loopback.")
    ] = 8501,
    redis_port: Annotated[
        int,
        typer.Option(envvar="STARTBOX_STACK_REDIS_PORT", help="Redis port published on loopback."),
    ] = 6390,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for every service (a first start compiles the model)."),
    ] = 1800,
) -> None:
    """Build what is missing, start every service, and wait until all are healthy and the API
    and the UI answer. On failure: the failing service and the line of its log that says why.

    Example: startbox stack up && curl -H "x-api-key: $(cat ~/.cache/startbox/stack/api-key)" \\
        localhost:8000/v1/models
    """
    from startbox.stack import key_file
    from startbox.stack import up as start

    stack = Stack(home=home, project=project, api_port=api_port, ui_port=ui_port,
                  redis_port=redis_port)  # fmt: skip
    with console.status("starting the stack") as status:
        started, show = _steps(status, "starting the stack")
        try:
            start(stack, timeout, show)
        except StackError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print(
        f"[green]up[/] in {time.monotonic() - started:.0f} s: API {stack.api_url} "
        f"(key in {key_file(home)}), UI {stack.ui_url}, Redis redis://127.0.0.1:{redis_port}"
    )


@app.command()
def down(
    home: Home = DEFAULT_HOME,
    project: Project = PROJECT,
    volumes: Annotated[
        bool, typer.Option(help="Also delete the data volume (model, compile cache, runs, Redis).")
    ] = False,
) -> None:
    """Stop and remove the stack's containers, keeping their logs (the data volume stays
    unless --volumes).

    Example: startbox stack down
    """
    from startbox.stack import down as stop

    with console.status("stopping the stack") as status:
        _, show = _steps(status, "stopping the stack")
        try:
            logs = stop(Stack(home=home, project=project), volumes, show)
        except StackError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print("[green]down[/]" + (f" (their logs: {logs})" if logs else ""))
