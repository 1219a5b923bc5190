"""`startbox sandbox ...`: run code in the sandbox, build its image, benchmark it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

app = typer.Typer(help="Run Python in hardened Docker containers.", no_args_is_help=True)
console = Console(stderr=True)
T = TypeVar("T")

if TYPE_CHECKING:  # imports stay inside commands so `startbox --help` is fast
    from sandbox.result import ExecResult
    from sandbox.settings import SandboxSettings


def _settings(**overrides: object) -> SandboxSettings:
    """Settings from the environment, with the flags that were given on top."""
    from sandbox.settings import SandboxSettings

    return SandboxSettings.model_validate({k: v for k, v in overrides.items() if v is not None})


@app.command("exec")
def exec_(
    source: Annotated[
        str | None, typer.Argument(help="A file with the code, or - for stdin.")
    ] = None,
    code: Annotated[str | None, typer.Option("--code", "-c", help="The code itself.")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(envvar="STARTBOX_SANDBOX_TIMEOUT", help="Wall-clock seconds. Default 10."),
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option(
            envvar="STARTBOX_SANDBOX_MEMORY", help="Memory limit, e.g. 256m. Default 512m."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
    stdin: Annotated[
        Path | None, typer.Option("--stdin", help="A file whose text the code reads as stdin.")
    ] = None,
    program: Annotated[
        bool,
        typer.Option("--program", help="Run as a whole program (a fresh process, no last value)."),
    ] = False,
    figures: Annotated[
        Path | None,
        typer.Option(
            help="Directory for the figures the code made. [default: a new temporary one]"
        ),
    ] = None,
) -> None:
    """Run code in a fresh sandbox and print the result.

    Example: startbox sandbox exec -c "import sympy; sympy.factorint(2**64 - 1)"
    """
    from sandbox.pool import SandboxPool
    from sandbox.render import render_result

    if code is not None and source is None:
        payload: str | bytes = code
    elif source == "-" and code is None:
        payload = sys.stdin.buffer.read()
    elif source is not None and code is None:
        path = Path(source)
        if not path.is_file():
            raise typer.BadParameter(f"{source} is not a file")
        payload = path.read_bytes()
    else:
        raise typer.BadParameter("give the code with -c CODE, or a FILE, or - for stdin")

    text_in = stdin.read_text() if stdin is not None else None

    async def main() -> ExecResult:
        async with (
            SandboxPool(_settings(memory=memory, pool_size=0)) as pool,
            pool.session() as session,
        ):
            if program:
                return await session.run_program(payload, stdin=text_in, timeout=timeout)
            return await session.run(payload, timeout=timeout, stdin=text_in)

    result = _run(main())
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        render_result(Console(), result)
    if result.images:
        for path, image in zip(save_images(result, figures), result.images, strict=True):
            console.print(f"saved figure {image.width}x{image.height} to {path}")
    raise typer.Exit(0 if result.ok else 1)


def save_images(result: ExecResult, directory: Path | None) -> list[Path]:
    """Write the result's figures as PNG files; returns their paths."""
    import base64
    import tempfile

    directory = directory or Path(tempfile.mkdtemp(prefix="startbox-figures-"))
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, image in enumerate(result.images, 1):
        path = directory / f"figure-{number}.png"
        path.write_bytes(base64.b64decode(image.data))
        paths.append(path)
    return paths


@app.command("build-image")
def build_image(
    force: Annotated[bool, typer.Option(help="Rebuild even if the image is current.")] = False,
    dockerfile: Annotated[
        bool,
        typer.Option(
            "--dockerfile",
            help="Build from sandbox/image/Dockerfile on a registry base image (pip installs "
            "the libraries) instead of offline with debootstrap.",
        ),
    ] = False,
    base_image: Annotated[
        str, typer.Option(help="The registry base image for --dockerfile.")
    ] = "python:3.12-slim",
) -> None:
    """Build the sandbox image (offline by default; about a minute the first time).

    Example: startbox sandbox build-image    (or, with a registry: --dockerfile)
    """
    import docker

    from sandbox.errors import ImageError
    from sandbox.image import build_image as build

    settings = _settings()
    with console.status("building the sandbox image") as status:
        try:
            build(
                docker.from_env(timeout=600),
                settings.image,
                home=settings.home,
                dockerfile_base=base_image if dockerfile else None,
                force=force,
                progress=lambda line: status.update(f"[dim]{line[:120]}"),
            )
        except ImageError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(f"[green]ready:[/] {settings.image}")


@app.command()
def demo() -> None:
    """A short walk through the sandbox: state, an error, a timeout, no network.

    Example: startbox sandbox demo
    """
    from sandbox.demo import run_demo

    _run(run_demo(Console()))


@app.command()
def bench(
    calls: Annotated[
        int, typer.Option(help="Trivial calls for the round-trip percentiles.")
    ] = 2000,
    out: Annotated[
        Path | None, typer.Option(help="Also write the results as JSON to this file.")
    ] = None,
) -> None:
    """Measure the sandbox against docker-run-per-call and a bare local python -c.

    Example: startbox sandbox bench --calls 2000
    """
    from sandbox.bench import render, run_bench

    report = _run(
        run_bench(_settings(pool_size=4, acquire_timeout=300), calls=calls, console=console)
    )
    render(Console(), report)
    if out:
        out.write_text(report.model_dump_json(indent=2))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from sandbox.errors import SandboxError

    try:
        return asyncio.run(coro)
    except SandboxError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
