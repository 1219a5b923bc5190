"""Fixtures on a real Docker engine: one warm pool for the suite, a fresh session per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import docker
import pytest

from sandbox.owner import POOL_LABEL, list_sandboxes
from sandbox.pool import SandboxPool, Session
from sandbox.settings import SandboxSettings


def containers_of(pool: SandboxPool) -> list[str]:
    found = list_sandboxes(docker.from_env())
    return [c["Id"] for c in found if c["Labels"].get(POOL_LABEL) == pool.id]


@pytest.fixture(scope="session")
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(
        SandboxSettings(pool_size=2, memory="256m", timeout=10, acquire_timeout=120)
    ) as pool:
        yield pool
    assert containers_of(pool) == [], "the pool left containers behind"


@pytest.fixture
async def session(pool: SandboxPool) -> AsyncIterator[Session]:
    async with pool.session() as session:
        yield session


@pytest.fixture
async def small_pool() -> AsyncIterator[SandboxPool]:
    """A pool of its own for tests that change limits."""
    settings = SandboxSettings(
        pool_size=1,
        memory="128m",
        pids=64,
        max_sessions=1,
        acquire_timeout=120,  # a container start on a loaded machine
        preload="numpy,sympy",  # the rest would not leave room to measure a bomb in 128m
    )
    async with SandboxPool(settings) as pool:
        yield pool
    assert containers_of(pool) == [], "the pool left containers behind"
