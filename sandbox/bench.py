"""`startbox sandbox bench`: the warm pool against the obvious alternatives, in one run.

Alternatives: a `docker run` per call (what a naive sandbox does) and a bare local
`python -c` (no isolation at all, the floor for starting an interpreter).
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import docker
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from sandbox.container import hardened_config
from sandbox.pool import SandboxPool
from sandbox.settings import SandboxSettings

TRIVIAL = "1"
SYMPY = "import sympy\nsympy.isprime(10**9 + 7)"


class Figure(BaseModel):
    name: str
    p50_ms: float
    p99_ms: float
    samples: int
    target: str = ""


class BenchReport(BaseModel):
    machine: str
    figures: list[Figure]
    execs_per_second_4_sessions: float


def machine_description() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo") if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    mem = next((line.split()[1] for line in _read("/proc/meminfo") if "MemTotal" in line), "0")
    engine = docker.from_env().version().get("Version", "?")
    system = f"{platform.system()} {platform.release()}"
    return (
        f"{cpu}, {os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB, {system}, "
        f"Docker {engine}, Python {platform.python_version()}"
    )


def _read(path: str) -> list[str]:
    try:
        with open(path) as handle:
            return handle.readlines()
    except OSError:
        return []


def figure(name: str, samples_ms: list[float], target: str = "") -> Figure:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figure(
        name=name,
        p50_ms=statistics.median(ordered),
        p99_ms=p99,
        samples=len(ordered),
        target=target,
    )


async def timed(action: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run_bench(settings: SandboxSettings, *, calls: int, console: Console) -> BenchReport:
    figures: list[Figure] = []
    async with SandboxPool(settings) as pool:
        with console.status("warm exec round trip"):
            async with pool.session() as session:
                await timed(lambda: session.run(TRIVIAL), 50)  # let the stream settle
                figures.append(
                    figure(
                        "warm exec round trip (trivial code)",
                        await timed(lambda: session.run(TRIVIAL), calls),
                        "p50 ≤ 1 ms, p99 ≤ 5 ms",
                    )
                )
        acquire_ms, sympy_ms = [], []
        with console.status("acquire from the warm pool, first sympy call per fresh session"):
            for _ in range(10):
                await pool.warm()
                started = time.perf_counter()
                container = await pool.acquire()
                acquire_ms.append((time.perf_counter() - started) * 1000)
                pool.release(container)
                await pool.warm()
                async with pool.session() as session:
                    sympy_ms += await timed(lambda: session.run(SYMPY), 1)
        figures.append(figure("acquire a session from the warm pool", acquire_ms, "p50 ≤ 10 ms"))
        figures.append(figure("first sympy.isprime in a fresh session", sympy_ms, "< 20 ms"))
        with console.status("throughput over 4 concurrent sessions"):
            await pool.warm()
            rate = await _throughput(pool, sessions=4, seconds=3.0)
    with console.status("docker run per call"):
        figures.append(
            figure("docker run per call (same image, same limits)", _docker_run(settings, 10))
        )
    with console.status("bare local python -c"):
        figures.append(figure("bare local python -c (no isolation)", _bare_python(20)))
    return BenchReport(
        machine=machine_description(), figures=figures, execs_per_second_4_sessions=rate
    )


async def _throughput(pool: SandboxPool, *, sessions: int, seconds: float) -> float:
    async def worker() -> int:
        done = 0
        async with pool.session() as session:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                await session.run(TRIVIAL)
                done += 1
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(worker() for _ in range(sessions)))
    return sum(counts) / (time.perf_counter() - started)


def _docker_run(settings: SandboxSettings, repeat: int) -> list[float]:
    client = docker.from_env()
    config = hardened_config(settings)
    config.pop("stdin_open")
    config["command"] = ["python3", "-c", TRIVIAL]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.containers.run(**config, remove=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _bare_python(repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", TRIVIAL], check=True, timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def render(console: Console, report: BenchReport) -> None:
    table = Table(title=f"sandbox bench · {report.machine}", title_justify="left")
    for column in ("measure", "p50 ms", "p99 ms", "n", "target"):
        table.add_column(column, justify="left" if column in ("measure", "target") else "right")
    for f in report.figures:
        table.add_row(f.name, f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}", str(f.samples), f.target)
    console.print(table)
    console.print(
        f"executions per second over 4 sessions: [bold]{report.execs_per_second_4_sessions:.0f}[/]"
        " (target ≥ 500)"
    )
