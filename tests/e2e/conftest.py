"""The stack's images take minutes to build on a fresh machine, so when a session will run the
stack test, `startbox stack build` starts in the background as collection ends and that test
runs last: the build overlaps the rest of the suite instead of adding to it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from model_host.settings import ModelSettings

STACK_TEST = "test_stack_up.py"
BUILD_TIMEOUT = 3600  # a fresh machine: debootstrap, the wheelhouse, both images


@dataclass
class BackgroundBuild:
    """One `startbox stack build` running beside the other tests, its output in a log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, home: Path) -> BackgroundBuild:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        log = home / "stack" / "logs" / f"build-{stamp}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("startbox")), "stack", "build"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "STARTBOX_HOME": str(home)},
            )  # fmt: skip
        return cls(proc=proc, log=log)

    def wait(self) -> None:
        """Until the images exist; a failed build fails the stack test with its log's end."""
        try:
            code = self.proc.wait(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"`startbox stack build` took over {BUILD_TIMEOUT} s (log: {self.log})")
        if code != 0:
            tail = self.log.read_text(errors="replace")[-3000:]
            pytest.fail(f"`startbox stack build` failed with exit code {code}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


BUILD = pytest.StashKey[BackgroundBuild]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The stack test last, so its images have the whole suite's time to build."""
    stack = [item for item in items if item.path.name == STACK_TEST]
    items[:] = [item for item in items if item.path.name != STACK_TEST] + stack


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.path.name == STACK_TEST for item in session.items):
        session.config.stash[BUILD] = BackgroundBuild.start(ModelSettings().home)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A session that ends early (-x, Ctrl-C) does not leave a build running."""
    if build := session.config.stash.get(BUILD, None):
        build.stop()


@pytest.fixture(scope="session")
def stack_images(request: pytest.FixtureRequest) -> None:
    """The images of this checkout, built (the build began as collection ended)."""
    build = request.config.stash.get(BUILD, None)
    if build is None:  # collected without this hook's help (e.g. by node id in another dir)
        build = request.config.stash[BUILD] = BackgroundBuild.start(ModelSettings().home)
    build.wait()
