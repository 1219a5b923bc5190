"""`startbox model ...`: prepare the embedded model, serve it with vLLM, stop it, benchmark it."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from model_host import flags

app = typer.Typer(help="Prepare, serve and benchmark the model (vLLM).", no_args_is_help=True)
console = Console(stderr=True)

if TYPE_CHECKING:  # imports stay inside commands so `startbox --help` is fast
    from model_host.bench import BenchReport
    from model_host.server import VllmServer
    from model_host.settings import ModelSettings


def _settings(**overrides: object) -> ModelSettings:
    """Settings from the environment, with the flags that were given on top."""
    from model_host.settings import ModelSettings

    return ModelSettings.model_validate({k: v for k, v in overrides.items() if v is not None})


def _fail(message: object, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


@app.command()
def prepare(
    model: flags.Model = None,
    force: Annotated[
        bool,
        typer.Option(
            envvar="STARTBOX_MODEL_PREPARE_FORCE",
            help="Convert again even if the cached copy is current.",
        ),
    ] = False,
) -> None:
    """Make the model servable offline and print its directory (idempotent, cached).

    Example: startbox model prepare
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from model_host.lock import LockTimeout
    from model_host.prepare import PrepareError, prepare_model

    settings = _settings(model=model)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"preparing {settings.model}")
        try:
            path = prepare_model(
                settings.model,
                settings.home,
                force=force,
                progress=lambda step: progress.update(task, description=step),
            )
        except (PrepareError, LockTimeout) as exc:
            raise _fail(exc) from None
    console.print(f"[green]ready:[/] {settings.model}")
    typer.echo(str(path))


@app.command()
def serve(
    model: flags.Model = None,
    served_name: flags.ServedName = None,
    port: flags.Port = None,
    host: flags.Host = None,
    device: flags.Device = None,
    max_model_len: flags.MaxModelLen = None,
    profile: flags.Profile = None,
    reasoning_parser: flags.ReasoningParser = None,
    prefix_caching: flags.PrefixCaching = None,
    compiled: flags.Compile = None,
    block_size: flags.BlockSize = None,
    gpu_memory_utilization: flags.GpuMemoryUtilization = None,
    dtype: flags.Dtype = None,
    startup_timeout: flags.StartupTimeout = None,
    base_url: Annotated[
        str | None,
        flags.model_option(
            "base_url",
            help="Use this running OpenAI-compatible server instead of starting vLLM: only "
            "checks it answers.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            envvar="STARTBOX_MODEL_DRY_RUN", help="Print the exact vLLM command and exit."
        ),
    ] = False,
) -> None:
    """Run vLLM's OpenAI-compatible server until Ctrl-C / SIGTERM.

    Example: startbox model serve --port 8010 --max-model-len 8192
    """
    from model_host.host import profile_for
    from model_host.lock import LockTimeout
    from model_host.prepare import PrepareError, prepare_model
    from model_host.server import ServeError, VllmServer, build_plan, port_in_use, resolve_device

    settings = _settings(
        model=model, served_name=served_name, port=port, host=host, device=device,
        max_model_len=max_model_len, profile=profile, reasoning_parser=reasoning_parser,
        prefix_caching=prefix_caching, compile=compiled, block_size=block_size,
        gpu_memory_utilization=gpu_memory_utilization,
        dtype=dtype, startup_timeout=startup_timeout, base_url=base_url,
    )  # fmt: skip
    if settings.base_url:
        asyncio.run(_check_remote(settings))
        return
    try:
        if dry_run:
            resolved = resolve_device(settings.device, strict=False)
            from model_host.prepare import embedded_dir
            from model_host.settings import EMBEDDED_MODEL

            model_dir = (
                embedded_dir(settings.home) if settings.model == EMBEDDED_MODEL else settings.model
            )
            plan = build_plan(settings, model_dir, profile_for(settings, model_dir), resolved)
            typer.echo(plan.shell())
            return
        resolved = resolve_device(settings.device)
        if port_in_use(settings.host, settings.port):
            raise ServeError(
                f"port {settings.port} on {settings.host} is already in use. Pick another with "
                "--port, or stop what runs there (`startbox model stop` for a startbox vLLM)."
            )
        with console.status(f"preparing {settings.model}") as status:
            model_dir = prepare_model(
                settings.model, settings.home, progress=lambda step: status.update(step)
            )
        plan = build_plan(settings, model_dir, profile_for(settings, model_dir), resolved)
    except (ServeError, PrepareError, LockTimeout, ValueError) as exc:
        raise _fail(exc) from None
    console.print(f"$ {plan.shell()}", soft_wrap=True, markup=False, highlight=False)
    console.print(f"vLLM log: {plan.log_file}")
    server = VllmServer(plan, settings.home, tied=True)
    code = asyncio.run(_serve(server, settings))
    raise typer.Exit(code)


async def _serve(server: VllmServer, settings: ModelSettings) -> int:
    """Start, wait for health with a progress line, then run until a signal or vLLM exits."""
    from model_host.server import ServeError, log_tail

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server.start()
    try:
        with console.status("starting vLLM") as status:
            ready = asyncio.ensure_future(
                server.wait_ready(
                    settings.startup_timeout,
                    lambda waited, line: status.update(
                        f"starting vLLM ({waited:.0f} s) [dim]{line[-100:]}"
                    ),
                )
            )
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopped.done():
                ready.cancel()
                console.print("interrupted while starting; stopping vLLM")
                server.stop()
                return 130
            stopped.cancel()
            ready.result()
    except ServeError as exc:
        server.stop()
        console.print(f"[red]error:[/] {exc}")
        return 1
    console.print(
        f"[green]serving[/] {server.plan.served_name} at {server.plan.base_url}/v1 "
        f"(device {server.plan.device}); Ctrl-C stops it"
    )
    while not stop.is_set():
        if server.exited() is not None:
            console.print(
                f"[red]vLLM exited[/] with code {server.exited()}. Last lines of "
                f"{server.plan.log_file}:\n{log_tail(server.plan.log_file)}"
            )
            server.stop()
            return 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            continue
    console.print("stopping vLLM")
    started = time.monotonic()
    code = await asyncio.to_thread(server.stop)
    console.print(f"stopped (exit code {code}) in {time.monotonic() - started:.1f} s")
    return 0


async def _check_remote(settings: ModelSettings) -> None:
    from model_host.client import CompletionClient, ModelUnavailable

    url = settings.effective_base_url
    try:
        async with CompletionClient(url, settings.served_model_name, timeout=10) as client:
            names = await client.models()
    except ModelUnavailable as exc:
        raise _fail(exc) from None
    console.print(f"[green]{url} answers[/]; it serves: {', '.join(names) or 'nothing'}")
    console.print("nothing to start: set STARTBOX_MODEL_BASE_URL to use it")


@app.command()
def stop(
    port: flags.Port = None,
) -> None:
    """Stop the vLLM that startbox left running in the background on a port.

    Example: startbox model stop --port 8010
    """
    from model_host.server import stop_recorded

    settings = _settings(port=port)
    record = stop_recorded(settings.home, settings.port)
    if record is None:
        console.print(f"no startbox vLLM recorded on port {settings.port}")
        return
    console.print(f"stopped vLLM pid {record.pid} ({record.served_name} at {record.base_url})")


@app.command()
def bench(
    base_url: Annotated[
        str | None,
        flags.model_option(
            "base_url", help="Server to measure. Default: the embedded vLLM, started if needed."
        ),
    ] = None,
    model: flags.Model = None,
    served_name: flags.ServedName = None,
    concurrency: Annotated[
        str,
        typer.Option(envvar="STARTBOX_MODEL_BENCH_CONCURRENCY", help="Concurrency levels, a,b,c."),
    ] = "1,4,16",
    max_tokens: Annotated[
        int,
        typer.Option(
            envvar="STARTBOX_MODEL_BENCH_MAX_TOKENS", help="Generated tokens per request."
        ),
    ] = 64,
    repeats: Annotated[
        int,
        typer.Option(
            envvar="STARTBOX_MODEL_BENCH_REPEATS", help="Continuations timed per cache setting."
        ),
    ] = 5,
    out: Annotated[
        Path | None,
        typer.Option(
            envvar="STARTBOX_MODEL_BENCH_OUT", help="Also write the results as JSON here."
        ),
    ] = None,
    markdown: Annotated[
        bool,
        typer.Option(envvar="STARTBOX_MODEL_BENCH_MARKDOWN", help="Also print Markdown tables."),
    ] = False,
) -> None:
    """Tokens/s at several concurrencies and TTFT after a tool output, vs the openai client.

    Example: startbox model bench --base-url http://127.0.0.1:8010
    """
    from model_host.bench import as_markdown, render, run_bench
    from model_host.client import ModelUnavailable
    from model_host.host import ensure_embedded_server
    from model_host.prepare import PrepareError, prepare_model
    from model_host.template import ChatTemplate

    settings = _settings(base_url=base_url, model=model, served_name=served_name)
    levels = [int(level) for level in concurrency.split(",") if level.strip()]

    async def main() -> BenchReport:
        url = await ensure_embedded_server(settings, progress=console.print)
        model_dir = await asyncio.to_thread(prepare_model, settings.model, settings.home)
        template = await asyncio.to_thread(ChatTemplate.load, str(model_dir))
        return await run_bench(
            url, settings.served_model_name, template, concurrency=levels,
            max_tokens=max_tokens, repeats=repeats, console=console,
        )  # fmt: skip

    try:
        report = asyncio.run(main())
    except (ModelUnavailable, PrepareError, ValueError) as exc:
        raise _fail(exc) from None
    render(Console(), report)
    if markdown:
        typer.echo(as_markdown(report))
    if out:
        out.write_text(report.model_dump_json(indent=2))
