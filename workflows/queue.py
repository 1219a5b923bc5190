"""Batches on Redis with arq: one job per problem x sample, any number of workers.

Why arq: it is asyncio-native (the agent is async, so one worker process runs N runs at once
in one event loop with one sandbox pool), it dedupes jobs by id, and it is at-least-once: a
job stays queued until a worker finishes it.

A job is held by a lease: arq's in-progress mark, set for `lease` seconds (not arq's job
timeout + 10 s) and renewed by the live worker every third of that. A SIGKILLed worker's
marks expire within one lease, so another worker retries its jobs then, however long jobs may
run, and `batch status` stops counting them as running.

Results live in a Redis hash per batch keyed by problem and sample, written with HSET: a job
run twice (after a worker died) overwrites, never duplicates, and a job whose result is
already stored is not solved again. Job ids are `name:dataset:problem:sample`, so a resubmit
enqueues nothing that is queued, running or done.

Redis may restart under a worker: its poll loop and a finishing job's write wait for Redis
with backoff, for up to `reconnect_timeout` s; past that the worker cancels its jobs (their
leases lapse, so others retry them), closes its sandbox pool and exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from arq import func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix
from arq.worker import Worker
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent.settings import RunOptions
from workflows.datasets import Problem
from workflows.errors import BatchNotFound, QueueUnavailable
from workflows.results import SampleResult

QUEUE = "startbox:queue"
Solver = Literal["result", "trajectory"]
Stored = TypeVar("Stored", bound=SampleResult)


class QueueSettings(BaseSettings):
    """Where the queue lives; env twins `STARTBOX_QUEUE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="STARTBOX_QUEUE_", extra="forbid")

    redis_url: str = Field("redis://127.0.0.1:6379", description="Redis, as a redis:// URL.")
    job_timeout: float = Field(
        900.0, gt=0, description="Seconds a job may run before it is cancelled."
    )
    poll_delay: float = Field(
        0.05, gt=0, description="Seconds between a worker's looks at the queue (job latency)."
    )
    lease: float = Field(
        15.0,
        ge=1,
        description="Seconds a worker holds a job unrenewed: a dead worker's job "
        "is retried after this.",
    )
    reconnect_timeout: float = Field(
        60.0, ge=0, description="Seconds a worker waits for a lost Redis before it exits."
    )
    connect_timeout: float = Field(
        3.0, gt=0, description="Seconds a command (`batch submit` ...) waits for Redis."
    )

    @property
    def redis(self) -> RedisSettings:
        return RedisSettings.from_dsn(self.redis_url)


REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
# redis-py annotates its async commands as `Awaitable[T] | T` (shared with the sync client;
# redis/redis-py#2399), so mypy refuses to await them: those awaits carry ignore[misc].
log = logging.getLogger("arq.worker")
T = TypeVar("T")


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


def _unreachable(settings: QueueSettings, waited: float) -> QueueUnavailable:
    return QueueUnavailable(
        f"no Redis at {settings.redis_url} (waited {waited:.0f} s): start one with "
        "`startbox redis`, or point STARTBOX_QUEUE_REDIS_URL at yours"
    )


async def connect(settings: QueueSettings) -> ArqRedis:
    """A pool for a command: fails within `connect_timeout` s when Redis is down."""
    redis = dataclasses.replace(
        settings.redis, conn_retries=0, conn_timeout=max(1, round(settings.connect_timeout))
    )
    try:
        async with asyncio.timeout(settings.connect_timeout):
            return await create_pool(redis, default_queue_name=QUEUE)
    except (*REDIS_DOWN, TimeoutError) as exc:
        raise _unreachable(settings, settings.connect_timeout) from exc


async def until_reachable(redis: ArqRedis, settings: QueueSettings) -> None:
    """Ping with backoff until Redis answers; QueueUnavailable after `reconnect_timeout` s."""
    started = time.monotonic()
    delay = 0.1
    while True:
        try:
            async with asyncio.timeout(max(delay, 1.0)):
                await redis.ping()
            return
        except (*REDIS_DOWN, TimeoutError) as exc:
            waited = time.monotonic() - started
            if waited + delay > settings.reconnect_timeout:
                raise _unreachable(settings, waited) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def persist(redis: ArqRedis, settings: QueueSettings, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, retried once Redis answers again: a finished job's result outlives a restart."""
    while True:
        try:
            return await call()
        except REDIS_DOWN:
            log.warning("Redis lost while storing a result: waiting for it")
            await until_reachable(redis, settings)


async def submit(
    redis: ArqRedis,
    name: str,
    problems: list[Problem],
    samples: int,
    options: RunOptions,
    solver: Solver = "result",
) -> tuple[int, int]:
    """Queue what is not done, queued or running; returns (enqueued, already there).

    `solver` is what a job stores: "result" (a graded SampleResult) or "trajectory" (RFT's
    Trajectory: the result plus its segments, read from the worker's run store)."""
    meta, jobs, _ = _keys(name)
    await redis.hset(meta, mapping={"total": len(problems) * samples, "cancelled": 0})  # type: ignore[misc]
    stored = await _results(redis, name, SampleResult)
    # a failed run is retried on resubmit, like `batch run` does
    done = {key for key, r in stored.items() if r.cause != "run_error"}
    enqueued = 0
    for problem in problems:
        for sample in range(samples):
            if (problem.id, sample) in done:
                continue
            ident = job_id(name, problem, sample)
            await redis.sadd(jobs, ident)  # type: ignore[misc]
            job = await redis.enqueue_job(
                "solve", name, problem.model_dump_json(), sample, options.model_dump_json(),
                solver, _job_id=ident, _queue_name=QUEUE,
            )  # fmt: skip
            enqueued += job is not None
    return enqueued, len(problems) * samples - enqueued


async def _results(
    redis: ArqRedis,
    name: str,
    model: type[Stored] = SampleResult,  # type: ignore[assignment]
) -> dict[tuple[str, int], Stored]:
    raw = await redis.hgetall(_keys(name)[2])  # type: ignore[misc]
    parsed = (model.model_validate_json(value) for value in raw.values())
    return {r.key: r for r in parsed}


async def results(
    redis: ArqRedis,
    name: str,
    model: type[Stored] = SampleResult,  # type: ignore[assignment]
) -> list[Stored]:
    """The batch's results as `model` (a Trajectory for jobs submitted with that solver)."""
    return sorted((await _results(redis, name, model)).values(), key=lambda r: r.key)


async def status(redis: ArqRedis, name: str) -> BatchStatus:
    meta_key, jobs_key, _ = _keys(name)
    meta = await redis.hgetall(meta_key)  # type: ignore[misc]
    if not meta:
        raise BatchNotFound(f"no batch named {name!r} (submit it with `startbox batch submit`)")
    ids = [i.decode() for i in await redis.smembers(jobs_key)]  # type: ignore[misc]
    scores = await redis.zmscore(QUEUE, ids) if ids else []
    running = sum([await redis.exists(in_progress_key_prefix + i) for i in ids])
    done = await _results(redis, name, SampleResult)
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
    return int(await redis.hlen(_keys(name)[2]))  # type: ignore[misc]


async def cancel(redis: ArqRedis, name: str, wait: float = 30.0) -> Cancelled:
    """Drop the batch's queued jobs and abort its running ones (arq cancels their tasks, so
    each run ends as `cancelled` and frees its sandbox); waits up to `wait` s for them to end.

    The flag goes up first: a job that starts after it skips itself, and one that started
    before it is in progress by the time the running jobs are looked up, so none slips by.
    """
    meta_key, jobs_key, _ = _keys(name)
    if not await redis.exists(meta_key):
        raise BatchNotFound(f"no batch named {name!r} (see `startbox batch status NAME`)")
    await redis.hset(meta_key, "cancelled", "1")  # type: ignore[misc]
    ids = [i.decode() for i in await redis.smembers(jobs_key)]  # type: ignore[misc]
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
    ctx: dict[str, Any],
    name: str,
    problem_json: str,
    sample: int,
    options: str,
    solver: Solver = "result",
) -> str:
    """The arq job: solve, grade, HSET the result (idempotent by problem and sample)."""
    from workflows.rft.collect import trajectory_of
    from workflows.runner import solve_one

    redis: ArqRedis = ctx["redis"]
    meta_key, _, results_key = _keys(name)
    if await redis.hget(meta_key, "cancelled") == b"1":  # type: ignore[misc]
        return "cancelled"
    problem = Problem.model_validate_json(problem_json)
    key = _field(problem.id, sample)
    stored = await redis.hget(results_key, key)  # type: ignore[misc]
    if stored is not None and SampleResult.model_validate_json(stored).cause != "run_error":
        return "already done"  # its worker stored it, then lost Redis before finishing
    run = trajectory_of if solver == "trajectory" else solve_one
    result = await run(
        ctx["agent"], ctx["grader"], problem, sample, RunOptions.model_validate_json(options)
    )

    async def store() -> int:
        return await redis.hset(results_key, key, result.model_dump_json())  # type: ignore[misc]

    await persist(redis, ctx["settings"], store)
    return "correct" if result.correct else result.cause or "done"


class BatchWorker(Worker):
    """arq's Worker with leases a live worker renews and a poll loop that outlives a Redis
    restart (see the module docstring)."""

    def __init__(self, settings: QueueSettings, **options: Any) -> None:
        redis = dataclasses.replace(
            settings.redis, conn_retries=int(settings.reconnect_timeout), conn_retry_delay=1
        )  # arq's own retries cover a Redis that is down when the worker starts
        super().__init__(redis_settings=redis, **options)
        self.settings = settings
        self.ctx["settings"] = settings
        self.in_progress_timeout_s = settings.lease  # arq sets the mark for this long
        self._renewed = 0.0
        self._lost: QueueUnavailable | None = None

    async def main(self) -> None:
        try:
            await super().main()
        except QueueUnavailable:
            raise
        except REDIS_DOWN as exc:  # at start (after arq's retries) or in a burst's queue check
            self._lost = _unreachable(self.settings, self.settings.reconnect_timeout)
            raise self._lost from exc

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
            await self._renew_leases()
        except REDIS_DOWN as exc:
            log.warning("Redis lost (%s): reconnecting for up to %.0f s", exc,
                        self.settings.reconnect_timeout)  # fmt: skip
            try:
                await until_reachable(self.pool, self.settings)
            except QueueUnavailable as lost:
                self._lost = lost
                raise
            log.info("Redis is back: carrying on")

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # a lease that lapsed while Redis was down must not start a second copy here
        await super().start_jobs([i for i in job_ids if i.decode() not in self.tasks])

    async def _renew_leases(self) -> None:
        if time.monotonic() - self._renewed < self.settings.lease / 3:
            return
        self._renewed = time.monotonic()
        held = [job for job, task in self.tasks.items() if not task.done()]
        if not held:
            return
        async with self.pool.pipeline(transaction=False) as pipe:
            for job in held:  # XX: a mark its job's end just deleted stays deleted
                pipe.set(
                    in_progress_key_prefix + job, b"1", px=int(self.settings.lease * 1000), xx=True
                )
            await pipe.execute()

    async def close(self) -> None:
        if self._lost is None:
            await super().close()
            return
        # Redis is gone: release everything without it; the jobs' leases lapse on their own
        for task in self.tasks.values():
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


def make_worker(
    settings: QueueSettings, concurrency: int, open_agent: Any, burst: bool = False
) -> BatchWorker:
    """A worker; `open_agent(stack)` enters the Agent and Grader, returns both."""

    async def startup(ctx: dict[str, Any]) -> None:
        stack = contextlib.AsyncExitStack()
        ctx["stack"] = stack
        ctx["agent"], ctx["grader"] = await open_agent(stack)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "stack" in ctx:
            await ctx.pop("stack").aclose()

    return BatchWorker(
        settings,
        functions=[func(solve, name="solve", max_tries=5)],
        allow_abort_jobs=True,  # `batch cancel` stops running jobs
        queue_name=QUEUE,
        max_jobs=concurrency,
        job_timeout=settings.job_timeout,
        keep_result=0,  # the results hash is the record; arq's copy would only go stale
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=settings.poll_delay,
    )
