"""CLI flags shared by every command that runs the agent (solve, chat, batch run/submit,
worker, rft collect/eval): one definition each, with its env twin."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args

import typer
from pydantic import ValidationError

from agent.settings import RunOptions

# the model flags every agent command takes, defined once with the model host's settings
from model_host.flags import BaseUrl as BaseUrl
from model_host.flags import Model as Model
from model_host.profiles import SamplingOverrides

T = TypeVar("T")


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


def _sampling_flag(field: str) -> Any:
    """The flag of a sampling knob (--temperature ...): type, bounds and help from
    SamplingOverrides, checked as it is parsed (so an error names the flag), its env twin the
    configured default's variable."""
    knob = get_args(SamplingOverrides.model_fields[field].annotation)[0]  # Annotated[T, Field]
    kind, info = get_args(knob)

    def check(value: float | None) -> float | None:
        if value is not None:
            try:
                SamplingOverrides.model_validate({field: value})
            except ValidationError as exc:
                raise typer.BadParameter(exc.errors()[0]["msg"]) from None
        return value

    option = typer.Option(
        envvar=f"STARTBOX_MODEL_SAMPLING__{field.upper()}",
        help=f"{info.description} Default: STARTBOX_MODEL_SAMPLING__{field.upper()}, else the "
        "model profile's.",
        callback=check,
        rich_help_panel="Sampling",
    )
    return Annotated[kind | None, option]


SAMPLING_FLAGS = {field: _sampling_flag(field) for field in SamplingOverrides.model_fields}


def with_sampling(command: Callable[..., T]) -> Callable[..., T]:
    """Gives a command one flag per sampling knob, handed to it as its `sampling` argument
    (a SamplingOverrides), so no command lists the knobs itself."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "sampling"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=flag)
        for name, flag in SAMPLING_FLAGS.items()
    ]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> T:
        knobs = {name: kwargs.pop(name, None) for name in SAMPLING_FLAGS}
        return command(*args, sampling=SamplingOverrides.model_validate(knobs), **kwargs)

    # Typer reads the parameters from these: the command's own, then the knobs
    run.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in [*kept, *added]}
    return run
