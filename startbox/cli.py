"""The `startbox` command: composes each package's Typer sub-app.

Sub-app modules import only Typer and Rich at the top; heavy imports live inside the commands,
so `startbox --help` stays fast.
"""

from __future__ import annotations

import typer

from agent.cli import api, chat, demo, solve
from agent.cli import app as agent_app
from model_host.cli import app as model_app
from sandbox.cli import app as sandbox_app
from startbox.stack_cli import app as stack_app
from ui.cli import run_ui
from workflows.cli import app as batch_app
from workflows.cli import redis, worker

app = typer.Typer(
    name="startbox",
    help="Tool-integrated reasoning: a model that thinks, runs Python in a sandbox, thinks on.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(model_app, name="model")
app.add_typer(agent_app, name="agent")
app.add_typer(batch_app, name="batch")
app.add_typer(stack_app, name="stack")
app.command()(solve)
app.command()(demo)
app.command()(api)
app.command()(chat)
app.command("ui")(run_ui)
app.command()(worker)
app.command()(redis)
