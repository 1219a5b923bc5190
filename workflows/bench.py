"""`startbox batch bench`: what the Redis queue costs, and how throughput grows with workers;
with `--retry`, how soon a SIGKILLed worker's job is finished by another.

The model is the scripted server (it answers at once, standing in for a fast GPU), so the
figures are the batch machinery's own: agent loop, grading, queue round trips. Each queued
measure first runs a warm-up batch, so worker start-up (agent, sandbox pool) is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from arq.constants import retry_key_prefix
from pydantic import BaseModel

from agent.service import Agent
from agent.settings import AgentSettings, RunOptions
from model_host.scripted import Reply, ScriptedServer
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings
from workflows import queue
from workflows.datasets import Problem
from workflows.grading import Grader
from workflows.redis_server import redis_command
from workflows.runner import run_batch

OPTIONS = RunOptions(timeout=120, thinking_budget=64, answer_budget=32)


class RetryRow(BaseModel):
    lease_s: float
    job_timeout_s: float
    seconds: float  # from the SIGKILL to the job's result stored by another worker
    tries_at_kill: int  # arq's count of starts when killed: 1 unless a lease had lapsed


class Hang:
    """A model server that lists its model, then never answers a completion: a worker using
    it stays mid-job until it is killed."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET /v1/models"):
            body = json.dumps({"data": [{"id": "scripted", "object": "model"}]}).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            writer.write(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()
            return
        self.called.set()
        await reader.read()  # until the worker's connection dies with it


class BenchRow(BaseModel):
    mode: str  # in-process | queue
    workers: int
    concurrency: int  # runs at once per worker (or in-process)
    jobs: int
    jobs_per_s: float
    ms_per_job: float


def answer(request: dict[str, Any]) -> Reply:
    prompt = request.get("prompt", "")
    return Reply(text="\n\n\\boxed{4}" if prompt.endswith("</think>") else "<think>\nok</think>")


def problems(count: int, tag: str) -> list[Problem]:
    return [
        Problem(dataset="bench", id=f"{tag}-{i}", kind="math", question=f"2+2? ({tag} {i})",
                reference="4")
        for i in range(count)
    ]  # fmt: skip


async def in_process(base_url: str, jobs: int, concurrency: int, home: Path) -> BenchRow:
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    model = ModelSettings(base_url=base_url, served_name="scripted", profile="qwen3")
    agent = Agent(AgentSettings(home=home, persist=False), model, SandboxSettings(pool_size=0))
    async with agent, Grader(agent.pool) as grader:
        await run_batch(agent, grader, problems(concurrency, "warm"), home / "warm.jsonl", OPTIONS,
                        concurrency=concurrency)  # fmt: skip
        started = time.perf_counter()
        await run_batch(agent, grader, problems(jobs, "run"), home / "run.jsonl", OPTIONS,
                        concurrency=concurrency)  # fmt: skip
        elapsed = time.perf_counter() - started
    return _row("in-process", 1, concurrency, jobs, elapsed)


async def queued(
    base_url: str, redis_url: str, jobs: int, workers: int, concurrency: int, batch: str
) -> BenchRow:
    redis = await queue.connect(queue.QueueSettings(redis_url=redis_url))
    processes = [await _worker(base_url, redis_url, concurrency) for _ in range(workers)]
    try:
        await _drain(redis, f"{batch}-warm", problems(workers * concurrency * 2, "warm"))
        started = time.perf_counter()
        await _drain(redis, batch, problems(jobs, "run"))
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), 60)
        await redis.aclose()
    return _row("queue", workers, concurrency, jobs, elapsed)


async def _worker(
    base_url: str, redis_url: str, concurrency: int, **env: str
) -> asyncio.subprocess.Process:
    """A `startbox worker` process on the scripted model (or `base_url`'s)."""
    environment = {**os.environ, "STARTBOX_QUEUE_REDIS_URL": redis_url,
                   "STARTBOX_MODEL_BASE_URL": base_url, "STARTBOX_MODEL_PROFILE": "qwen3",
                   "STARTBOX_MODEL_SERVED_NAME": "scripted", "STARTBOX_AGENT_PERSIST": "false",
                   "STARTBOX_SANDBOX_POOL_SIZE": "0", **env}  # fmt: skip
    startbox = str(Path(sys.executable).with_name("startbox"))
    quiet = asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        startbox, "worker", "--concurrency", str(concurrency),
        env=environment, stdout=quiet, stderr=quiet,
    )  # fmt: skip


async def retry_latency(runs: int) -> list[RetryRow]:
    """Per run: a worker takes a job and hangs in it; a second worker starts and proves it is
    up on a warm-up batch; the first is SIGKILLed; the time until the second stores the job's
    result. Default lease and job timeout."""
    settings = queue.QueueSettings()
    rows: list[RetryRow] = []
    with tempfile.TemporaryDirectory(prefix="startbox-retry-bench-") as tmp:
        async with (
            ScriptedServer([], default=answer) as server,
            redis_server(Path(tmp) / "redis") as url,
            Hang() as hanging_url,
        ):
            redis = await queue.connect(queue.QueueSettings(redis_url=url))
            try:
                for run in range(runs):
                    doomed = await _worker(hanging_url, url, 1)
                    await queue.submit(redis, f"kill{run}", problems(1, f"kill{run}"), 1, OPTIONS)
                    async with asyncio.timeout(120):
                        while not (await queue.status(redis, f"kill{run}")).running:  # noqa: ASYNC110
                            await asyncio.sleep(0.05)
                    rescuer = await _worker(server.base_url, url, 1)
                    await _drain(redis, f"warm{run}", problems(1, f"warm{run}"))
                    ident = queue.job_id(f"kill{run}", problems(1, f"kill{run}")[0], 0)
                    tries = int(await redis.get(retry_key_prefix + ident) or 0)
                    doomed.kill()
                    killed = time.perf_counter()
                    await doomed.wait()
                    async with asyncio.timeout(settings.job_timeout):
                        while not await queue.done_count(redis, f"kill{run}"):  # noqa: ASYNC110
                            await asyncio.sleep(0.05)
                    rows.append(RetryRow(lease_s=settings.lease, job_timeout_s=settings.job_timeout,
                                         seconds=time.perf_counter() - killed,
                                         tries_at_kill=tries))  # fmt: skip
                    rescuer.terminate()
                    await asyncio.wait_for(rescuer.wait(), 60)
            finally:
                await redis.aclose()
    return rows


async def _drain(redis: Any, name: str, batch: list[Problem], limit: float = 600) -> None:
    await queue.submit(redis, name, batch, 1, OPTIONS)
    async with asyncio.timeout(limit):
        while await queue.done_count(redis, name) < len(batch):  # noqa: ASYNC110 - polls Redis
            await asyncio.sleep(0.05)


def _row(mode: str, workers: int, concurrency: int, jobs: int, elapsed: float) -> BenchRow:
    return BenchRow(mode=mode, workers=workers, concurrency=concurrency, jobs=jobs,
                    jobs_per_s=jobs / elapsed, ms_per_job=elapsed * 1000 / jobs)  # fmt: skip


@contextlib.asynccontextmanager
async def redis_server(directory: Path) -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = redis_command(port, directory)
    server = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                await asyncio.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)


async def bench(jobs: int, workers: list[int], concurrency: int) -> list[BenchRow]:
    """Concurrency 1 in-process and 1x1 queued give the queue's cost per job; then throughput."""
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="startbox-batch-bench-") as tmp:
        home = Path(tmp)
        async with (
            ScriptedServer([], default=answer) as server,
            redis_server(home / "redis") as url,
        ):
            rows.append(await in_process(server.base_url, jobs, 1, home / "serial"))
            rows.append(await queued(server.base_url, url, jobs, 1, 1, "serial"))
            if concurrency > 1:  # at 1 it is the serial row again
                rows.append(await in_process(server.base_url, jobs, concurrency, home / "parallel"))
            for count in workers:
                rows.append(
                    await queued(server.base_url, url, jobs, count, concurrency, f"w{count}")
                )
    return rows
