"""`startbox stack ...`: the whole stack of compose.yaml (model, API, workers, Redis, UI)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="The whole stack with docker compose, built offline.", no_args_is_help=True)
console = Console(stderr=True)

Home = typer.Option(
    Path.home() / ".cache" / "startbox", envvar="STARTBOX_HOME", help="startbox's data directory."
)


@app.command()
def build(home: Path = Home) -> None:
    """Build the stack's images (about 10 minutes the first time, seconds after).

    With a registry, STARTBOX_STACK_BASE=python:3.11-slim-bookworm skips the debootstrap base.
    Example: startbox stack build
    """
    from startbox.stack import StackError
    from startbox.stack import build as build_stack

    with console.status("building the stack") as status:
        try:
            build_stack(home, lambda line: status.update(f"building the stack: {escape(line)}"))
        except StackError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print("[green]built[/] startbox-app and startbox-cpu")


@app.command()
def up(
    home: Path = Home,
    api_port: int = typer.Option(8000, envvar="STARTBOX_API_PORT", help="Published API port."),
    ui_port: int = typer.Option(8501, envvar="STARTBOX_UI_PORT", help="Published UI port."),
    timeout: float = typer.Option(
        1800, help="Seconds to wait for the API (the first start prepares and compiles the model)."
    ),
) -> None:
    """Build what is missing, start every service, and wait until the API answers.

    Example: startbox stack up && curl -H "x-api-key: $(cat ~/.cache/startbox/stack/api-key)" \\
        localhost:8000/v1/models
    """
    from sandbox.cli import build_image
    from startbox.stack import StackError, key_file
    from startbox.stack import up as start

    build_image(force=False, dockerfile=False, base_image="")  # the API's and workers' sandboxes
    with console.status("starting the stack") as status:
        try:
            url = start(home, api_port, timeout, lambda line: status.update(escape(line)))
        except StackError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print(
        f"[green]up:[/] API {url} (key in {key_file(home)}), UI http://127.0.0.1:{ui_port}"
    )


@app.command()
def down(
    home: Path = Home,
    volumes: bool = typer.Option(False, help="Also delete the data volume (model, runs, Redis)."),
) -> None:
    """Stop and remove the stack's containers (the data volume stays unless --volumes).

    Example: startbox stack down
    """
    from startbox.stack import StackError
    from startbox.stack import down as stop

    with console.status("stopping the stack") as status:
        try:
            stop(home, volumes, lambda line: status.update(escape(line)))
        except StackError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print("[green]down[/]")
