"""A scripted model that answers by the question: right, wrong, or a crashing server."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.service import Agent
from agent.settings import AgentSettings
from model_host.scripted import Reply, ScriptedServer
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings
from tests.ports import free_port
from workflows.grading import Grader
from workflows.redis_server import redis_command

ANSWERS = {"RIGHT": "4", "WRONG": "5"}  # the question "... 2+2" with the model's answer
CODE = "def add(a, b):\n    return a + b\n"


def by_question(request: dict[str, Any]) -> Reply:
    """Each concurrent run gets its own next turn, chosen from its own prompt."""
    prompt = request.get("prompt", "")
    if "CRASH" in prompt:
        return Reply(status=500)
    if not prompt.endswith("</think>"):
        return Reply(text="<think>\nEasy.</think>")
    if "def add" in prompt:
        return Reply(text=f"\n\n```python\n{CODE}```")
    word = next((w for w in ANSWERS if w in prompt), "WRONG")
    return Reply(text=f"\n\n\\boxed{{{ANSWERS[word]}}}")


def make_agent(base_url: str, home: Path) -> Agent:
    return Agent(
        AgentSettings(home=home, persist=False, round_tokens=64),
        ModelSettings(base_url=base_url, served_name="scripted", profile="qwen3", retries=0),
        SandboxSettings(pool_size=1),
    )


@pytest.fixture(scope="module")
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer([], default=by_question) as server:
        yield server


@pytest.fixture(scope="module")
async def agent(
    scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Agent]:
    async with make_agent(scripted.base_url, tmp_path_factory.mktemp("home")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def grader(agent: Agent) -> AsyncIterator[Grader]:
    async with Grader(agent.pool, code_timeout=5) as opened:
        yield opened


class RedisProcess:
    """A real redis-server on a free loopback port that a test may SIGKILL and restart on the
    same append-only directory."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisProcess:
        self.process = subprocess.Popen(
            redis_command(self.port, self.directory), stdout=subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("redis-server exited at start") from None
                time.sleep(0.1)
        raise TimeoutError("redis-server did not listen within 10 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown save, only what the append-only file already holds."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
