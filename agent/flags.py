"""CLI flags shared by every command that runs the agent (solve, batch run/submit, worker):
one definition each, with its env twin."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agent.settings import RunOptions

# the model flags every agent command takes, defined once with the model host's settings
from model_host.flags import BaseUrl as BaseUrl
from model_host.flags import Model as Model


def _run_option(field: str) -> Any:
    """The flag of a RunOptions field: its description and default in --help, its env twin."""
    info = RunOptions.model_fields[field]
    default = "" if info.default is None else f" Default {info.default}."
    return typer.Option(
        envvar=f"STARTBOX_AGENT_{field.upper()}", help=f"{info.description}{default}"
    )


ThinkingBudget = Annotated[int | None, _run_option("thinking_budget")]
AnswerBudget = Annotated[int | None, _run_option("answer_budget")]
MaxToolCalls = Annotated[int | None, _run_option("max_tool_calls")]
MinToolCalls = Annotated[int | None, _run_option("min_tool_calls")]
HintRounds = Annotated[int | None, _run_option("hint_rounds")]
Seed = Annotated[int | None, _run_option("seed")]
LeadAnswer = Annotated[bool | None, _run_option("lead_answer")]
Timeout = Annotated[
    float | None, typer.Option(envvar="STARTBOX_AGENT_TIMEOUT", help="Seconds per run.")
]
