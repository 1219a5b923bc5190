"""Batches on Redis with arq: one job per problem x sample, any number of workers.

Why arq: it is asyncio-native (the agent is async, so one worker process runs N runs at once
in one event loop with one sandbox pool), it dedupes jobs by id, and it is at-least-once: a
job stays queued until a worker finishes it, so a worker killed mid-job leaves it to another
once the job's in-progress mark expires (job timeout + 10 s).

Results live in a Redis hash per batch keyed by problem and sample, written with HSET: a job
run twice (after a worker died) overwrites, never duplicates. Job ids are
`name:dataset:problem:sample`, so a resubmit enqueues nothing that is queued, running or done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from arq import func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.settings import RunOptions
from workflows.datasets import Problem
from workflows.results import SampleResult

QUEUE = "startbox:queue"


class QueueSettings(BaseSettings):
    """Where the queue lives; env twins `STARTBOX_QUEUE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="STARTBOX_QUEUE_", extra="forbid")

    redis_url: str = Field("redis://127.0.0.1:6379", description="Redis, as a redis:// URL.")
    job_timeout: float = Field(
        900.0, gt=0, description="Seconds a job may run; a dead worker's job restarts after +10."
    )
    poll_delay: float = Field(
        0.05, gt=0, description="Seconds between a worker's looks at the queue (job latency)."
    )

    @property
    def redis(self) -> RedisSettings:
        return RedisSettings.from_dsn(self.redis_url)


class Cancelled(BaseModel):
    dropped: int  # queued jobs removed
    stopped: int  # running jobs aborted and ended
    stopping: int  # running jobs aborted that had not ended within the wait


class BatchStatus(BaseModel):
    name: str
    total: int
    done: int
    correct: int
    queued: int
    running: int
    cancelled: bool


def _keys(name: str) -> tuple[str, str, str]:
    base = f"startbox:batch:{name}"
    return f"{base}:meta", f"{base}:jobs", f"{base}:results"


def job_id(name: str, problem: Problem, sample: int) -> str:
    return f"{name}:{problem.dataset}:{problem.id}:{sample}"


def _field(problem_id: str, sample: int) -> str:
    return f"{problem_id}#{sample}"


async def connect(settings: QueueSettings) -> ArqRedis:
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        return await create_pool(settings.redis, default_queue_name=QUEUE)
    except (RedisConnectionError, OSError) as exc:
        raise ConnectionError(
            f"no Redis at {settings.redis_url}: start one with `startbox redis` or set "
            "STARTBOX_QUEUE_REDIS_URL"
        ) from exc


async def submit(
    redis: ArqRedis, name: str, problems: list[Problem], samples: int, options: RunOptions
) -> tuple[int, int]:
    """Queue what is not done, queued or running; returns (enqueued, already there)."""
    meta, jobs, _ = _keys(name)
    await redis.hset(meta, mapping={"total": len(problems) * samples, "cancelled": 0})
    done = {
        key for key, r in (await _results(redis, name)).items() if r.cause != "run_error"
    }  # a failed run is retried on resubmit, like `batch run` does
    enqueued = 0
    for problem in problems:
        for sample in range(samples):
            if (problem.id, sample) in done:
                continue
            ident = job_id(name, problem, sample)
            await redis.sadd(jobs, ident)
            job = await redis.enqueue_job(
                "solve", name, problem.model_dump_json(), sample, options.model_dump_json(),
                _job_id=ident, _queue_name=QUEUE,
            )  # fmt: skip
            enqueued += job is not None
    return enqueued, len(problems) * samples - enqueued


async def _results(redis: ArqRedis, name: str) -> dict[tuple[str, int], SampleResult]:
    raw = await redis.hgetall(_keys(name)[2])
    parsed = (SampleResult.model_validate_json(value) for value in raw.values())
    return {r.key: r for r in parsed}


async def results(redis: ArqRedis, name: str) -> list[SampleResult]:
    return sorted((await _results(redis, name)).values(), key=lambda r: r.key)


async def status(redis: ArqRedis, name: str) -> BatchStatus:
    meta_key, jobs_key, _ = _keys(name)
    meta = await redis.hgetall(meta_key)
    if not meta:
        raise KeyError(f"no batch named {name!r} (submit it with `startbox batch submit`)")
    ids = [i.decode() for i in await redis.smembers(jobs_key)]
    scores = await redis.zmscore(QUEUE, ids) if ids else []
    running = sum([await redis.exists(in_progress_key_prefix + i) for i in ids])
    done = await _results(redis, name)
    return BatchStatus(
        name=name,
        total=int(meta[b"total"]),
        done=len(done),
        correct=sum(r.correct for r in done.values()),
        queued=sum(score is not None for score in scores) - running,
        running=running,
        cancelled=meta.get(b"cancelled") == b"1",
    )


async def done_count(redis: ArqRedis, name: str) -> int:
    """Results stored so far: cheaper than `status` for polling."""
    return int(await redis.hlen(_keys(name)[2]))


async def cancel(redis: ArqRedis, name: str, wait: float = 30.0) -> Cancelled:
    """Drop the batch's queued jobs and abort its running ones (arq cancels their tasks, so
    each run ends as `cancelled` and frees its sandbox); waits up to `wait` s for them to end.

    The flag goes up first: a job that starts after it skips itself, and one that started
    before it is in progress by the time the running jobs are looked up, so none slips by.
    """
    meta_key, jobs_key, _ = _keys(name)
    if not await redis.exists(meta_key):
        raise KeyError(f"no batch named {name!r}")
    await redis.hset(meta_key, "cancelled", 1)
    ids = [i.decode() for i in await redis.smembers(jobs_key)]
    running = await _running(redis, ids)
    queued = list(set(ids) - set(running))
    dropped = await redis.zrem(QUEUE, *queued) if queued else 0
    if queued:
        await redis.delete(*(job_key_prefix + ident for ident in queued))
    if running:
        now = int(time.time() * 1000)
        await redis.zadd(abort_jobs_ss, {ident: now for ident in running})
    stopping = running
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            while stopping := await _running(redis, stopping):  # noqa: ASYNC110 - other processes
                await asyncio.sleep(0.2)
    return Cancelled(
        dropped=int(dropped), stopped=len(running) - len(stopping), stopping=len(stopping)
    )


async def _running(redis: ArqRedis, ids: list[str]) -> list[str]:
    """The ids among `ids` that a worker holds right now."""
    async with redis.pipeline(transaction=False) as pipe:
        for ident in ids:
            pipe.exists(in_progress_key_prefix + ident)
        held = await pipe.execute()
    return [ident for ident, exists in zip(ids, held, strict=True) if exists]


async def solve(
    ctx: dict[str, Any], name: str, problem_json: str, sample: int, options: str
) -> str:
    """The arq job: solve, grade, HSET the result (idempotent by problem and sample)."""
    from workflows.runner import solve_one

    redis: ArqRedis = ctx["redis"]
    meta_key, _, results_key = _keys(name)
    if await redis.hget(meta_key, "cancelled") == b"1":
        return "cancelled"
    problem = Problem.model_validate_json(problem_json)
    result = await solve_one(
        ctx["agent"], ctx["grader"], problem, sample, RunOptions.model_validate_json(options)
    )
    await redis.hset(results_key, _field(problem.id, sample), result.model_dump_json())
    return "correct" if result.correct else result.cause or "done"


def worker_options(
    settings: QueueSettings, concurrency: int, open_agent: Any, burst: bool = False
) -> dict[str, Any]:
    """arq Worker arguments; `open_agent(stack)` enters the Agent and Grader, returns both."""

    async def startup(ctx: dict[str, Any]) -> None:
        stack = contextlib.AsyncExitStack()
        ctx["stack"] = stack
        ctx["agent"], ctx["grader"] = await open_agent(stack)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "stack" in ctx:
            await ctx["stack"].aclose()

    return {
        "functions": [func(solve, name="solve", max_tries=5)],
        "allow_abort_jobs": True,  # `batch cancel` stops running jobs
        "queue_name": QUEUE,
        "redis_settings": settings.redis,
        "max_jobs": concurrency,
        "job_timeout": settings.job_timeout,
        "keep_result": 0,  # the results hash is the record; arq's copy would only go stale
        "on_startup": startup,
        "on_shutdown": shutdown,
        "burst": burst,
        "poll_delay": settings.poll_delay,
    }
