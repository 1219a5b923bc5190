"""The `startbox` command: composes each package's Typer sub-app.

Sub-app modules import only Typer and Rich at the top; heavy imports live inside the commands,
so `startbox --help` stays fast.

Errors end a command in one line: every startbox error (each package's tree, see
`startbox.errors`) and every invalid setting (a pydantic ValidationError, e.g. from a bad
STARTBOX_* value) prints `error: ...` and exits 1; `--debug` or STARTBOX_DEBUG=1 shows the
traceback instead. Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agent.cli import api, chat, demo, solve
from agent.cli import app as agent_app
from model_host.cli import app as model_app
from sandbox.cli import app as sandbox_app
from startbox.errors import one_line
from startbox.stack_cli import app as stack_app
from ui.cli import run_ui
from workflows.cli import app as batch_app
from workflows.cli import grade, redis, worker
from workflows.rft.cli import app as rft_app


class Startbox(typer.Typer):
    """The root app: turns expected errors into one line (see the module docstring)."""

    debug = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            message = one_line(exc)
            if message is None or self.debug:
                raise
            typer.echo(f"error: {message}", err=True)
            raise SystemExit(1) from None


app = Startbox(
    name="startbox",
    help="Tool-integrated reasoning: a model that thinks, runs Python in a sandbox, thinks on.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="STARTBOX_DEBUG", help="Show the traceback of an error."),
    ] = False,
) -> None:
    """Tool-integrated reasoning: a model that thinks, runs Python in a sandbox, thinks on."""
    Startbox.debug = debug


app.add_typer(sandbox_app, name="sandbox")
app.add_typer(model_app, name="model")
app.add_typer(agent_app, name="agent")
app.add_typer(batch_app, name="batch")
app.add_typer(stack_app, name="stack")
app.add_typer(rft_app, name="rft")
app.command()(solve)
app.command()(demo)
app.command()(api)
app.command()(chat)
app.command("ui")(run_ui)
app.command()(worker)
app.command()(redis)
app.command()(grade)
