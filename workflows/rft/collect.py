"""`rft collect` and the runs behind `rft eval`: Hint-infer over a dataset, kept as trajectories.

It reuses the batch machinery: `trajectory_of` is the solver that `run_batch` (in-process) and
the queue's job (`startbox worker`) call; it runs and grades one sample with `solve_one` and adds
the run's typed segments, read back from the run store the agent writes anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from agent.service import Agent
from agent.settings import AgentSettings, RunOptions
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings
from workflows.datasets import Problem
from workflows.grading import Grader
from workflows.rft.trajectory import Trajectory
from workflows.runner import solve_one

TENANT = "rft"  # every collect/eval run is one tenant's: its runs reuse recycled containers


def store_of(out: Path) -> Path:
    """The run store beside a trajectory file: the segments come from it, runs can be shown."""
    return out.with_name(out.name + ".runs.db")


@contextlib.asynccontextmanager
async def open_agent(
    model: ModelSettings,
    out: Path,
    concurrency: int,
    grade_timeout: float = 10.0,
    progress: Callable[[str], None] | None = None,
    **agent_overrides: object,
) -> AsyncIterator[tuple[Agent, Grader]]:
    """An Agent whose run store sits beside `out`, and a Grader on its sandbox pool, sized so
    `concurrency` runs each hold a container and hand it, reset, to the tenant's next run."""
    settings = AgentSettings(persist=True, store_path=store_of(out), **agent_overrides)  # type: ignore[arg-type]
    sandbox = SandboxSettings()
    sandbox = sandbox.model_copy(
        update={
            "max_sessions": max(sandbox.max_sessions, concurrency),
            "max_idle": max(sandbox.max_idle, concurrency),
            "pool_size": max(sandbox.pool_size, concurrency // 4),  # the first wave starts
            "acquire_timeout": max(sandbox.acquire_timeout, 120.0),  # a batch run may wait
        }
    )
    async with (
        Agent(settings, model, sandbox, progress=progress) as agent,
        Grader(agent.pool, grade_timeout, grade_timeout) as grader,
    ):
        yield agent, grader


async def trajectory_of(
    agent: Agent, grader: Grader, problem: Problem, sample: int, options: RunOptions
) -> Trajectory:
    """One graded sample with its prompt, segments and the options (with the sampling used)
    and model that made it."""
    result = await solve_one(agent, grader, problem, sample, options, owner=TENANT)
    assert agent.store is not None  # open_agent always persists
    transcript = await agent.store.transcript(result.run_id) if result.run_id else None
    seed = None if options.seed is None else options.seed + sample
    used = agent.used(options).model_copy(update={"kind": problem.kind, "seed": seed})
    trajectory = Trajectory(
        **result.model_dump(),
        question=problem.question,
        prompt=transcript.prompt if transcript else "",
        segments=transcript.segments if transcript else [],
        completion_tokens=result.thinking_tokens + result.answer_tokens,
        options=used.model_dump(),
        model=agent.client.model,
    )
    trajectory.hints = trajectory.count("hint")
    trajectory.tool_errors = trajectory.count("tool_error")
    return trajectory
