"""Fixtures shared across suites, and the suite-wide promise that no sandbox is left behind."""

from __future__ import annotations

import docker
import pytest

from sandbox.owner import OWNER_LABEL, POOL_LABEL, list_sandboxes, owner_id
from tests.model_host.fixtures import model_dir, model_settings, template, vllm_url

__all__ = ["model_dir", "model_settings", "template", "vllm_url"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture has closed its pool, none of this process's containers remain."""
    try:
        found = list_sandboxes(docker.from_env())
    except docker.errors.DockerException:
        return  # no engine: the sandbox suites have failed loudly already
    left = [c for c in found if c["Labels"].get(OWNER_LABEL) == owner_id()]
    if left:
        pools = sorted({c["Labels"].get(POOL_LABEL, "?") for c in left})
        session.shouldfail = f"{len(left)} sandbox containers left behind by pools {pools}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
