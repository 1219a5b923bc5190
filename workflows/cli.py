"""`startbox batch ...`: solve and grade a whole problem set, and summarise the results."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:  # heavy imports stay inside the commands, so `startbox --help` is fast
    from agent.settings import RunOptions
    from model_host.settings import ModelSettings
    from workflows.datasets import Problem

app = typer.Typer(help="Batch solving of problem sets, graded, with reports.", no_args_is_help=True)
console = Console(stderr=True)
FIELD_NAMES = ("question", "answer", "id")


def run(
    source: str = typer.Argument(
        ..., help="A JSONL file, 'sample' (the demo set) or 'humaneval' (built in)."
    ),
    kind: str = typer.Option("math", envvar="STARTBOX_BATCH_KIND", help="math or code."),
    out: Path = typer.Option(
        ..., envvar="STARTBOX_BATCH_OUT", help="Results JSONL; rerun with it to resume."
    ),
    concurrency: int = typer.Option(4, min=1, envvar="STARTBOX_BATCH_CONCURRENCY"),
    samples: int = typer.Option(
        1, min=1, envvar="STARTBOX_BATCH_SAMPLES", help="Runs per problem, for pass@k."
    ),
    limit: int = typer.Option(
        None, min=1, envvar="STARTBOX_BATCH_LIMIT", help="The first N problems only."
    ),
    field: list[str] = typer.Option(
        [],
        envvar="STARTBOX_BATCH_FIELD",
        help="Pick a JSONL field: question=NAME, answer=NAME or id=NAME (repeatable).",
    ),
    grade_timeout: float = typer.Option(
        10.0, envvar="STARTBOX_BATCH_GRADE_TIMEOUT", help="Seconds per grading (tests, verify)."
    ),
    model: str = typer.Option(None, envvar="STARTBOX_MODEL_MODEL", help="Model dir or hub id."),
    base_url: str = typer.Option(
        None,
        envvar="STARTBOX_MODEL_BASE_URL",
        help="An OpenAI-compatible server; default: the embedded vLLM (started if needed).",
    ),
    thinking_budget: int = typer.Option(None, envvar="STARTBOX_AGENT_THINKING_BUDGET"),
    answer_budget: int = typer.Option(None, envvar="STARTBOX_AGENT_ANSWER_BUDGET"),
    max_tool_calls: int = typer.Option(None, envvar="STARTBOX_AGENT_MAX_TOOL_CALLS"),
    seed: int = typer.Option(None, envvar="STARTBOX_AGENT_SEED", help="Sample i uses seed+i."),
    timeout: float = typer.Option(None, envvar="STARTBOX_AGENT_TIMEOUT", help="Seconds per run."),
) -> None:
    """Solve every problem (x samples) in this process, grade it, and print the summary.

    Example: startbox batch run sample --out results.jsonl --concurrency 4 --samples 2
    """
    from pydantic import ValidationError

    from agent.settings import AgentSettings
    from model_host.settings import ModelSettings
    from workflows.datasets import load

    if kind not in ("math", "code"):
        raise typer.BadParameter("--kind must be math or code")
    fields = _fields(field)
    try:
        data = load(
            source,
            "code" if kind == "code" else "math",
            fields.get("question"),
            fields.get("answer"),
            fields.get("id"),
        )
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc)) from None
    for bad in data.bad_rows:
        console.print(f"[yellow]skipped line {bad.line}:[/] {bad.reason}")
    problems = data.problems[:limit] if limit else data.problems
    if not problems:
        raise typer.BadParameter(f"{source} holds no usable problem (see the skipped lines)")
    try:
        options = AgentSettings().run_options(
            thinking_budget=thinking_budget,
            answer_budget=answer_budget,
            max_tool_calls=max_tool_calls,
            seed=seed,
            timeout=timeout,
        )
        overrides = {"model": model, "base_url": base_url}
        model_settings = ModelSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    asyncio.run(_run(problems, out, options, model_settings, samples, concurrency, grade_timeout))
    report(out, as_json=False)


async def _run(
    problems: list[Problem],
    out: Path,
    options: RunOptions,
    model_settings: ModelSettings,
    samples: int,
    concurrency: int,
    grade_timeout: float,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from agent.service import Agent
    from agent.settings import AgentSettings
    from sandbox.settings import SandboxSettings
    from workflows.grading import Grader
    from workflows.results import SampleResult
    from workflows.runner import pending, run_batch

    todo, done = pending(problems, samples, out)
    console.print(f"{len(todo)} runs to do, {done} already in {out}")
    sandbox = SandboxSettings()
    sandbox = sandbox.model_copy(update={"max_sessions": max(sandbox.max_sessions, concurrency)})
    async with (
        Agent(
            AgentSettings(), model_settings, sandbox, progress=lambda m: console.print(m)
        ) as agent,
        Grader(agent.pool, grade_timeout, grade_timeout) as grader,
    ):
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(),
                   "{task.fields[right]} right", TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("solving", total=len(todo), right=0)
            right = 0

            def tick(result: SampleResult) -> None:
                nonlocal right
                right += result.correct
                progress.update(task, advance=1, right=right)

            await run_batch(
                agent, grader, problems, out, options, samples, concurrency, on_result=tick
            )


def _fields(pairs: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in FIELD_NAMES or not value:
            raise typer.BadParameter(f"--field {pair!r}: use question=NAME, answer=NAME or id=NAME")
        fields[name] = value
    return fields


def report(
    results: Path = typer.Argument(..., help="A results JSONL written by `batch run`."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON to stdout."),
) -> None:
    """Summarise a results file: accuracy, pass@k, tokens, tool calls, latency, failures.

    Example: startbox batch report results.jsonl --json
    """
    from workflows.report import summarize, table
    from workflows.results import read_results

    if not results.exists():
        raise typer.BadParameter(f"no results at {results}: run `startbox batch run` first")
    summary = summarize(read_results(results).values())
    if as_json:
        typer.echo(json.dumps(summary.model_dump(), indent=2))
        return
    summary_path = results.with_suffix(".summary.json")
    summary_path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    Console().print(table(summary, title=str(results)))
    console.print(f"summary written to {summary_path}")


app.command()(run)
app.command()(report)
