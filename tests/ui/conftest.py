"""The UI against a real `startbox api` process, its model the scripted server of the test.

The UI tests are synchronous (AppTest, a browser), so the scripted server runs on its own event
loop in a thread instead of on pytest's loop, which would be blocked while they wait.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from model_host.scripted import Reply, ScriptedServer
from tests.ports import free_port, scripted_api_env
from tests.ui.browser import chromium_path

KEY = "ui-test-key"
OTHER_KEY = "ui-other-key"  # another tenant of the same API
STARTBOX = str(Path(sys.executable).with_name("startbox"))
CODE_RUN = [
    "<think>\nLet me compute it in Python.\n```python\nx = 6 * 7\nprint(x)\n```\n",
    "The output says 42, so the product is 42.</think>",
    "\n\nThe product is $6 \\times 7 = \\boxed{42}$.",
]
FOLLOW_UP = [  # the next turn of CODE_RUN's conversation: x is still in the kernel
    "<think>\nx is still defined.\n```python\nprint(x + 1)\n```\n",
    "The output says 43.</think>",
    "\n\nSo $x + 1 = \\boxed{43}$.",
]


class ThreadedScripted:
    """A ScriptedServer on an event loop of its own thread."""

    def __init__(self) -> None:
        self.server = ScriptedServer([], default=Reply(text="<think>\nok</think>"))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.__aexit__(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Until `url` answers 200, or fail with the log of the process that should serve it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args!r} exited {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {seconds:.0f} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class Stack:
    api_url: str
    scripted: ScriptedServer

    def load(self, *turns: str) -> None:
        """The model turns of the next run."""
        self.scripted.replies = [Reply(text=turn) for turn in turns]

    def client(self, key: str = KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"x-api-key": key}, timeout=30, trust_env=False
        )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`startbox api` on loopback with a real sandbox pool and the scripted model."""
    workdir = tmp_path_factory.mktemp("ui-api")
    port = free_port()
    with ThreadedScripted() as scripted:
        env = {
            **scripted_api_env(scripted.base_url, workdir, port, keys=f"{KEY},{OTHER_KEY}"),
            "STARTBOX_SANDBOX_POOL_SIZE": "1",
        }
        log = workdir / "api.log"
        with log.open("wb") as out:
            process = subprocess.Popen([STARTBOX, "api"], env=env, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/readyz", process, log, 120)
            yield Stack(url, scripted)
        finally:
            stop(process)


@pytest.fixture(scope="session")
def ui_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`startbox ui` as a user starts it, against the test's API (for the browser tests)."""
    if chromium_path() is None:
        pytest.fail("no chromium: run scripts/setup-system.sh (or apt-get install chromium)")
    port, log = free_port(), tmp_path_factory.mktemp("ui") / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [STARTBOX, "ui", "--api-url", stack.api_url, "--api-key", KEY, "--port", str(port)],
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", process, log, 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def ui_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The UI settings (read by the page from the environment) point at the stack."""
    monkeypatch.setenv("STARTBOX_UI_API_URL", stack.api_url)
    monkeypatch.setenv("STARTBOX_UI_API_KEY", KEY)
    monkeypatch.setenv("STARTBOX_UI_FOLLOW_TIMEOUT", "60")
    return stack
