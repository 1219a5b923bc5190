"""Fixtures shared across suites, and the suite-wide promise that no sandbox is left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

from sandbox.owner import OWNER_LABEL, POOL_LABEL, list_sandboxes, owner_id
from sandbox.pool import SandboxPool
from tests.model_host.fixtures import model_dir, model_settings, template, vllm_url

__all__ = ["model_dir", "model_settings", "template", "vllm_url"]

OPENED_BY: dict[str, str] = {}  # pool id -> the test that opened it


@pytest.fixture(autouse=True, scope="session")
def _name_pools() -> Iterator[None]:
    """Remember which test opened each pool, so a leftover container names its test."""
    opened = SandboxPool.__aenter__

    async def aenter(pool: SandboxPool) -> SandboxPool:
        OPENED_BY[pool.id] = os.environ.get("PYTEST_CURRENT_TEST", "?")
        return await opened(pool)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SandboxPool, "__aenter__", aenter)
        yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture has closed its pool, none of this process's containers remain."""
    try:
        found = list_sandboxes(docker.from_env())
    except docker.errors.DockerException:
        return  # no engine: the sandbox suites have failed loudly already
    left = [c for c in found if c["Labels"].get(OWNER_LABEL) == owner_id()]
    if left:
        found_in = sorted(
            f"{c['Status']} from {OPENED_BY.get(c['Labels'].get(POOL_LABEL, ''), '?')}"
            for c in left
        )
        session.shouldfail = f"{len(left)} sandbox containers left behind: {found_in}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
