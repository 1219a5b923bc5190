"""CLI flags shared by every command that runs the agent (solve, batch run/submit, worker):
one definition each, with its env twin."""

from __future__ import annotations

from typing import Annotated

import typer

Model = Annotated[
    str | None, typer.Option(envvar="STARTBOX_MODEL_MODEL", help="Model dir or hub id.")
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="STARTBOX_MODEL_BASE_URL",
        help="An OpenAI-compatible server; default: the embedded vLLM (started if needed).",
    ),
]
ThinkingBudget = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_THINKING_BUDGET")]
AnswerBudget = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_ANSWER_BUDGET")]
MaxToolCalls = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_MAX_TOOL_CALLS")]
MinToolCalls = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_MIN_TOOL_CALLS")]
HintRounds = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_HINT_ROUNDS")]
Seed = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_SEED")]
Timeout = Annotated[
    float | None, typer.Option(envvar="STARTBOX_AGENT_TIMEOUT", help="Seconds per run.")
]
