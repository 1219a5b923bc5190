"""The stack test's `startbox stack up`, started in the background as collection ends: on a
fresh machine the images' build and the model's first compile take many minutes, and this way
they overlap the rest of the suite (the stack test runs last) instead of adding to it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from model_host.lock import file_lock
from model_host.settings import ModelSettings
from startbox.stack import Stack
from tests.ports import free_port

# on by default (`make test`); STARTBOX_STACK_E2E=0 skips it, e.g. a run without a Docker engine
SKIPPED = os.environ.get("STARTBOX_STACK_E2E", "1") == "0"
PROJECT = "startbox-e2e"
UP_TIMEOUT = 2400  # a cold machine: debootstrap, the wheelhouse, both images, the first compile
# one stack test at a time on this engine (another checkout's `make test`, CI)
LOCK = Path("/tmp/startbox-stack-e2e.lock")
DOWN_TIMEOUT = 300
# the test's model service starts vLLM eager: a cold compile on a fresh machine is minutes of
# both cores taken from the suite; that the image can compile is its own check (g++ for inductor)
EAGER = {"STARTBOX_MODEL_COMPILE": "false"}


def stack_cli(
    *args: str, home: Path, env: Mapping[str, str] | None = None, log: IO[str] | None = None
) -> subprocess.Popen[str]:
    """`startbox stack ...` as a user runs it: its own key, the given STARTBOX_HOME; its output
    piped, or into `log`."""
    command = [str(Path(sys.executable).with_name("startbox")), "stack", *args]
    environment = {k: v for k, v in os.environ.items() if k != "STARTBOX_API_KEY"}
    out = log or subprocess.PIPE
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True,
        env=environment | {"STARTBOX_HOME": str(home), **(env or {})},
    )  # fmt: skip


def finished(proc: subprocess.Popen[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Its output once it ends; killed (and failed) after `timeout` seconds."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err = (err or "") + f"\n(killed after {timeout:g} s)"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_cli(*args: str, home: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    return finished(stack_cli(*args, home=home, env=env), timeout)


def ports(stack: Stack) -> list[str]:
    return ["--api-port", str(stack.api_port), "--ui-port", str(stack.ui_port),
            "--redis-port", str(stack.redis_port)]  # fmt: skip


class BackgroundUp:
    """One `stack up` of the test's project in a thread, holding the engine's stack-test lock
    until `finish` has brought the stack down."""

    def __init__(self) -> None:
        self.stack = Stack(home=ModelSettings().home, project=PROJECT, api_port=free_port(),
                           ui_port=free_port(), redis_port=free_port())  # fmt: skip
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log = self.stack.home / "stack" / "logs" / f"{PROJECT}-up-{stamp}.log"
        self._held = contextlib.ExitStack()
        self._proc: subprocess.Popen[str] | None = None
        self._result: subprocess.CompletedProcess[str] | None = None
        self._error: BaseException | None = None
        self._done = False
        self._locked = False  # down only a stack this process holds the lock for
        self._thread = threading.Thread(target=self._up, name="stack-up", daemon=True)
        self._thread.start()

    def _up(self) -> None:
        try:
            self._held.enter_context(file_lock(LOCK, timeout=UP_TIMEOUT))
            self._locked = True
            if self._done:  # the session ended while this waited for the lock
                return
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("w") as log:
                self._proc = stack_cli("up", "--project", PROJECT, *ports(self.stack),
                                       home=self.stack.home, env=EAGER, log=log)  # fmt: skip
                self._result = finished(self._proc, UP_TIMEOUT)
        except Exception as exc:  # surfaced by wait(), in the stack test
            self._error = exc

    def wait(self) -> Stack:
        """The stack once `up` succeeded; else the test fails with the end of up's output."""
        self._thread.join(timeout=2 * UP_TIMEOUT + 60)
        if self._error is not None:
            pytest.fail(f"`startbox stack up` could not run: {self._error}")
        result = self._result
        assert result is not None, "`startbox stack up` did not end in time"
        said = self.log.read_text(errors="replace")
        assert result.returncode == 0, f"{said[-3000:]}\n(the whole output: {self.log})"
        return self.stack

    def finish(self) -> None:
        """Down (whatever state up reached), then free the lock; idempotent."""
        if self._done:
            return
        self._done = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
        self._thread.join(timeout=120)
        if not self._locked:  # another checkout's stack test holds the engine's stack
            return
        try:
            run_cli("down", "--project", PROJECT, home=self.stack.home, timeout=DOWN_TIMEOUT)
        finally:
            self._held.close()
