"""`python -m ui`: the UI without the rest of startbox, as its own container runs it."""

import typer

from ui.cli import run_ui

typer.run(run_ui)
