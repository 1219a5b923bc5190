"""`startbox solve` and `startbox agent ...`: the START loop from the terminal."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvloop
from rich.console import Console

from agent import flags
from model_host.profiles import SamplingOverrides

if TYPE_CHECKING:  # heavy imports stay inside the commands, so `startbox --help` is fast
    from agent.events import Event
    from agent.settings import AgentSettings, RunOptions
    from agent.store import RunRecord
    from model_host.settings import ModelSettings

app = typer.Typer(help="The START reasoning loop.", no_args_is_help=True)
console = Console(stderr=True)


@flags.with_sampling
def solve(
    question: Annotated[str, typer.Argument(help="The problem; - reads it from stdin.")],
    sampling: SamplingOverrides,
    model: flags.Model = None,
    base_url: flags.BaseUrl = None,
    thinking_budget: flags.ThinkingBudget = None,
    answer_budget: flags.AnswerBudget = None,
    max_tool_calls: flags.MaxToolCalls = None,
    min_tool_calls: flags.MinToolCalls = None,
    hint_rounds: flags.HintRounds = None,
    seed: flags.Seed = None,
    timeout: flags.Timeout = None,
    kind: Annotated[
        str | None, typer.Option(envvar="STARTBOX_AGENT_KIND", help="math or code.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Write events as JSON lines to stdout.")
    ] = False,
) -> None:
    """Solve one problem, showing the trace live.

    Example: startbox solve "What is the sum of the primes below 100?" --max-tool-calls 3
    """
    from pydantic import ValidationError

    from agent.settings import AgentSettings
    from model_host.settings import ModelSettings

    if question == "-":
        question = sys.stdin.read()
    try:
        settings = AgentSettings()
        options = settings.run_options(
            thinking_budget=thinking_budget,
            answer_budget=answer_budget,
            max_tool_calls=max_tool_calls,
            min_tool_calls=min_tool_calls,
            hint_rounds=hint_rounds,
            seed=seed,
            timeout=timeout,
            kind=kind,
            sampling=sampling,
        )
        overrides = {"model": model, "base_url": base_url}
        model_settings = ModelSettings.model_validate(
            {k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    code = uvloop.run(_solve(question, settings, model_settings, options, as_json))
    raise typer.Exit(code)


async def _solve(
    question: str,
    settings: AgentSettings,
    model_settings: ModelSettings,
    options: RunOptions,
    as_json: bool,
) -> int:
    from agent.events import RunFinished
    from agent.render import TraceRenderer
    from agent.service import Agent, QuestionError
    from model_host.client import ModelUnavailable
    from sandbox.image import ImageError
    from sandbox.pool import SandboxError

    async with contextlib.AsyncExitStack() as stack:
        try:
            with console.status("starting the agent") as status:
                agent = await stack.enter_async_context(
                    Agent(settings, model_settings, progress=status.update)
                )
        except (ModelUnavailable, SandboxError, ImageError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            return 2
        finished: Event | None = None
        try:
            if as_json:
                async for finished in agent.solve(question, options):
                    sys.stdout.write(finished.model_dump_json() + "\n")
                    sys.stdout.flush()
            else:
                budgets = (options.thinking_budget, options.answer_budget)
                with TraceRenderer(Console(), *budgets) as renderer:
                    async for finished in agent.solve(question, options):
                        renderer.feed(finished)
        except QuestionError as exc:
            console.print(f"[red]error:[/] {exc}")
            return 2
    return 0 if isinstance(finished, RunFinished) and finished.status == "ok" else 1


def api(
    host: Annotated[
        str | None, typer.Option(envvar="STARTBOX_API_HOST", help="Default 127.0.0.1.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(envvar="STARTBOX_API_PORT", help="Default 8000.")
    ] = None,
) -> None:
    """Serve the REST API (runs, SSE events, OpenAI-compatible chat) with uvicorn.

    Keys come from STARTBOX_API_KEYS (comma-separated); STARTBOX_API_OPEN=1 serves without.
    Example: STARTBOX_API_KEYS=secret startbox api --port 8000
    """
    import uvicorn
    from pydantic import ValidationError

    from agent.api.app import create_app
    from agent.api.settings import ApiSettings
    from agent.errors import StoreError
    from agent.settings import AgentSettings
    from agent.store import check_store

    overrides = {"host": host, "port": port}
    settings = ApiSettings.model_validate({k: v for k, v in overrides.items() if v is not None})
    check_port(settings.host, settings.port)  # before the embedded vLLM spends a minute starting
    try:
        app = create_app(settings)
        agent_settings = AgentSettings()
        if agent_settings.persist:  # before anything starts: a bad path fails in a second
            check_store(agent_settings.database)
    except ValidationError:
        raise  # an invalid setting: the root prints it in one line
    except (ValueError, StoreError) as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", loop="uvloop")


def check_port(host: str, port: int) -> None:
    """PortBusy unless `host:port` can be bound now (with SO_REUSEADDR, as uvicorn binds)."""
    import socket

    from agent.errors import PortBusy

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise PortBusy(
            f"cannot serve on {host}:{port} ({exc.strerror or exc}): stop what listens there, "
            "or pick another port with --port or STARTBOX_API_PORT"
        ) from exc


@flags.with_sampling
def chat(
    sampling: SamplingOverrides,
    api_url: Annotated[
        str | None,
        typer.Option(
            envvar="STARTBOX_CHAT_API_URL", help="A running startbox API; default: in-process."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="STARTBOX_CHAT_API_KEY", help="Its key (x-api-key).")
    ] = None,
    no_think: Annotated[
        bool, typer.Option("--no-think", help="Start with thinking off (/think on turns it on).")
    ] = False,
    model: flags.Model = None,
    base_url: flags.BaseUrl = None,
) -> None:
    """A conversation in the terminal: follow-ups share one Python kernel across turns.

    Commands: /new, /fork N, /think on|off|default, /quit. Ctrl-C cancels the turn.
    Example: startbox chat --no-think   or   startbox chat --api-url http://127.0.0.1:8000
    """
    from agent.chat import run_local, run_remote

    thinking = False if no_think else None
    out = Console()
    if api_url:
        uvloop.run(run_remote(api_url, api_key, out, thinking, sampling))
        return
    from agent.service import Agent
    from agent.settings import AgentSettings
    from model_host.settings import ModelSettings

    settings = AgentSettings()
    overrides = {"model": model, "base_url": base_url}
    model_settings = ModelSettings.model_validate(
        {k: v for k, v in overrides.items() if v is not None}
    )

    async def local() -> None:
        with console.status("starting the agent") as status:
            agent = Agent(settings, model_settings, progress=status.update)
            await agent.__aenter__()
        try:
            await run_local(agent, settings.run_options(sampling=sampling), out, thinking)
        finally:
            await agent.__aexit__(None, None, None)

    uvloop.run(local())


DEMO_QUESTION = (
    "Write a Python program that prints the sum of all prime numbers below 100, run it, "
    "and give the sum in \\boxed{}."
)


def demo(
    question: Annotated[str, typer.Argument(help="The problem to solve.")] = DEMO_QUESTION,
) -> None:
    """Solve a sample problem end to end with the embedded model: the `make demo` job.

    It starts the embedded vLLM if none runs (the first start compiles for a few minutes),
    asks for at least one tool call so the sandbox is used, and shows the trace live.

    Example: startbox demo
    """
    from agent.settings import AgentSettings
    from model_host.settings import ModelSettings

    settings = AgentSettings()
    options = settings.run_options(
        thinking_budget=384, answer_budget=128, min_tool_calls=1, max_tool_calls=3, seed=0
    )
    raise typer.Exit(uvloop.run(_solve(question, settings, ModelSettings(), options, False)))


@app.command()
def bench(
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar="STARTBOX_MODEL_BASE_URL",
            help="Server for the throughput half; default: the embedded vLLM (started if needed).",
        ),
    ] = None,
    runs: Annotated[int, typer.Option(help="Scripted runs for the overhead figure.")] = 50,
    concurrency: Annotated[
        int, typer.Option(help="Concurrent runs for the throughput figure.")
    ] = 8,
    overhead_only: Annotated[
        bool, typer.Option(help="Skip the real-model throughput half.")
    ] = False,
    api_runs: Annotated[
        int,
        typer.Option(
            help="Also bench the REST API with this many scripted runs, and one run's latency "
            "over SSE and in-process with up to 15 (0: skip)."
        ),
    ] = 0,
    code_seconds: Annotated[
        float,
        typer.Option(help="Also measure code-running runs/s for this long per side (0: skip)."),
    ] = 0.0,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON.")] = None,
) -> None:
    """Orchestration overhead per round, and agent vs raw tokens/s on a real server.

    Example: startbox agent bench --concurrency 8
    """
    from agent.bench import render, run_bench
    from agent.settings import AgentSettings

    report = run_bench(
        base_url=base_url,
        runs=runs,
        concurrency=concurrency,
        home=AgentSettings().home,
        console=console,
        skip_throughput=overhead_only,
        api_runs=api_runs,
        code_seconds=code_seconds,
    )
    render(Console(), report)
    if out:
        out.write_text(report.model_dump_json(indent=2))


@app.command("bench-threads")
def bench_threads(
    cells: Annotated[int, typer.Option(min=1, help="Cells in the thread that a replay runs.")] = 5,
    rounds: Annotated[int, typer.Option(min=1, help="Replayed + live turn pairs.")] = 10,
) -> None:
    """Turn latency of a thread with its kernel live vs rebuilt by replay (scripted model).

    Example: startbox agent bench-threads --cells 5 --rounds 10
    """
    from agent.settings import AgentSettings
    from agent.thread_bench import run_thread_bench

    report = uvloop.run(run_thread_bench(AgentSettings().home, cells, rounds, console))
    for name, value in report.summary().items():
        Console().print(f"{name}: {value:.1f}")


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="A run id (from `startbox agent runs`).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Write the events as JSON lines.")
    ] = False,
) -> None:
    """Read a finished or interrupted run back from the store and show its trace.

    Example: startbox agent show 3f2a9c...
    """
    from agent.render import TraceRenderer

    record = uvloop.run(_stored(run_id))
    if record is None:
        console.print(f"[red]error:[/] no run {run_id!r} in the store (see `startbox agent runs`)")
        raise typer.Exit(1)
    if as_json:
        for event in record.events:
            sys.stdout.write(event.model_dump_json() + "\n")
        return
    budgets = (_budget(record.options, "thinking_budget"), _budget(record.options, "answer_budget"))
    with TraceRenderer(Console(), *budgets) as renderer:
        for event in record.events:
            renderer.feed(event)
    if record.status == "running":
        console.print("[yellow]this run has no end in the store: it was interrupted")


@app.command()
def runs(limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20) -> None:
    """List recent runs from the store.

    Example: startbox agent runs --limit 5
    """
    import datetime

    from rich.table import Table

    table = Table("started", "status", "answer", "question")
    table.add_column("id", no_wrap=True)
    for record in uvloop.run(_recent(limit)):
        started = datetime.datetime.fromtimestamp(record.created_at).strftime("%Y-%m-%d %H:%M:%S")
        answer = (record.answer or "")[:40]
        table.add_row(started, record.status, answer, record.question[:60], record.id)
    Console().print(table)


def _budget(options: dict[str, object], name: str) -> int:
    """A budget from a stored run's options; 0 (no meter) if it has none."""
    value = options.get(name)
    return value if isinstance(value, int) else 0


async def _stored(run_id: str) -> RunRecord | None:
    from agent.settings import AgentSettings
    from agent.store import RunStore

    async with RunStore(AgentSettings().database) as store:
        return await store.get(run_id)


async def _recent(limit: int) -> list[RunRecord]:
    from agent.settings import AgentSettings
    from agent.store import RunStore

    async with RunStore(AgentSettings().database) as store:
        return await store.recent(limit)
