"""The stack test runs last, and its `stack up` starts in the background as collection ends
(tests/e2e/stack_run.py), so its build and first compile overlap the rest of the suite."""

from __future__ import annotations

import pytest

from tests.e2e.stack_run import SKIPPED, BackgroundUp

STACK_TEST = "test_stack_up.py"
UP = pytest.StashKey[BackgroundUp]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The stack test last, so its stack has the whole suite's time to come up."""
    stack = [item for item in items if item.path.name == STACK_TEST]
    items[:] = [item for item in items if item.path.name != STACK_TEST] + stack


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or SKIPPED:
        return
    if any(item.path.name == STACK_TEST for item in session.items):
        session.config.stash[UP] = BackgroundUp()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A session that ends early (-x, Ctrl-C) leaves no stack running."""
    if up := session.config.stash.get(UP, None):
        up.finish()


@pytest.fixture(scope="module")
def background_up(request: pytest.FixtureRequest) -> BackgroundUp:
    """The `stack up` begun as collection ended (or now, if the hook did not see this test)."""
    if UP not in request.config.stash:
        request.config.stash[UP] = BackgroundUp()
    return request.config.stash[UP]
