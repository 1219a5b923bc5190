"""Turn latency of a thread: with its kernel live vs rebuilt by replaying its cells.

The model is a scripted server in its own process (each turn: one cell, then an answer), so
the figure is startbox's own cost: prompt rendering with the history, the sandbox, the store,
and for a replayed turn a fresh container plus the replay of the thread's cells.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from agent.conversation import Conversations
from agent.events import KernelRestored
from agent.service import Agent
from agent.settings import AgentSettings
from agent.threads import ThreadStore
from model_host.scripted import Reply, scripted_process
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings

CELL = "import numpy as np\nv = int(np.arange(10**5).sum()) + len(dir())\nprint(v)"


def responder(request: dict[str, Any]) -> Reply:
    """One cell per turn: code, then (after its output) the end of thinking, then the answer."""
    prompt = str(request.get("prompt", ""))
    if prompt.endswith("</think>"):
        return Reply(text="\n\n\\boxed{1}")
    if prompt.rstrip().endswith("```") and "```output" in prompt.rsplit("assistant", 1)[-1]:
        return Reply(text="Done.</think>")
    return Reply(text=f"<think>\n```python\n{CELL}\n```\n")


class ThreadBench(BaseModel):
    cells: int
    rounds: int
    live_ms: list[float]
    replayed_ms: list[float]
    replay_ms: list[float]  # the replay alone, as kernel_restored reports it

    def summary(self) -> dict[str, float]:
        return {
            "live turn p50 ms": statistics.median(self.live_ms),
            "replayed turn p50 ms": statistics.median(self.replayed_ms),
            "replay alone p50 ms": statistics.median(self.replay_ms),
        }


async def run_thread_bench(home: Path, cells: int, rounds: int, console: Console) -> ThreadBench:
    report = ThreadBench(cells=cells, rounds=rounds, live_ms=[], replayed_ms=[], replay_ms=[])
    async with scripted_process("agent.thread_bench:responder") as url:
        model = ModelSettings(home=home, base_url=url, profile="qwen3", served_name="scripted")
        settings = AgentSettings(home=home, store_path=home / f"bench-{uuid.uuid4().hex}.db")
        async with (
            Agent(settings, model, SandboxSettings(home=home, pool_size=2)) as agent,
            ThreadStore(agent.store) as threads,  # type: ignore[arg-type]
            Conversations(agent, threads) as conversations,
        ):
            options = settings.run_options(max_tool_calls=1, timeout=120)

            async def turn(thread_id: str) -> tuple[float, float | None]:
                thread = await threads.get(thread_id)
                assert thread is not None
                run_id = uuid.uuid4().hex
                index = await conversations.begin(thread, run_id, "again", None)
                started, replay = time.perf_counter(), None
                async for event in conversations.turn(
                    thread, index, "again", options, None, run_id
                ):
                    if isinstance(event, KernelRestored):
                        replay = event.duration_ms
                return (time.perf_counter() - started) * 1000, replay

            base = await threads.create("bench", "bench")
            for _ in range(cells):
                await turn(base.id)
            await conversations.release(base.id)
            for number in range(rounds):
                source = await threads.get(base.id)
                assert source is not None
                fork = await threads.fork(source, cells, "bench")
                replayed, replay = await turn(fork.id)  # no kernel yet: replays `cells` cells
                live, _ = await turn(fork.id)
                assert replay is not None
                report.replayed_ms.append(replayed)
                report.replay_ms.append(replay)
                report.live_ms.append(live)
                await conversations.release(fork.id)
                console.print(
                    f"round {number + 1}/{rounds}: live {live:.0f} ms · replayed {replayed:.0f} ms"
                )
    return report
