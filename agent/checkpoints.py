"""LangGraph checkpoints of runs, written once a run has ended so that no run waits on them.

A run's graph has no checkpointer on its path: LangGraph reads the thread before the first step
and does checkpoint bookkeeping at every step even with `durability="exit"`, which cost more
than half a millisecond a round here, only to write one checkpoint when the run ends. `save`
writes that same checkpoint, the state the run ended in, from a background task through the
graph's `aupdate_state` with a SQLite saver; `get` and `flush` wait for what is pending, so a
reader always sees it.
"""

from __future__ import annotations

import asyncio
import logging

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from agent.graph import build_graph
from agent.state import AgentState

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, saver: BaseCheckpointSaver[str]) -> None:
        self.graph = build_graph(saver)
        self._pending: set[asyncio.Task[None]] = set()

    def save(self, run_id: str, state: AgentState) -> None:
        task = asyncio.create_task(self._write(run_id, state), name=f"checkpoint {run_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, run_id: str, state: AgentState) -> None:
        try:
            await self.graph.aupdate_state(_thread(run_id), dict(state), as_node="finalize")
        except Exception:  # the run store still holds the run; say so and go on
            log.exception("could not write the checkpoint of run %s", run_id)

    async def flush(self) -> None:
        """Wait for every checkpoint saved so far to be written."""
        await asyncio.gather(*self._pending)

    async def get(self, run_id: str) -> StateSnapshot:
        """The state run `run_id` ended in (empty values for an unknown run)."""
        await self.flush()
        return await self.graph.aget_state(_thread(run_id))


def _thread(run_id: str) -> dict[str, dict[str, str]]:
    return {"configurable": {"thread_id": run_id}}
