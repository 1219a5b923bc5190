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

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from agent.graph import build_graph
from agent.state import AgentState

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, saver: BaseCheckpointSaver[str]) -> None:
        self.graph = build_graph(saver)
        self._pending: set[asyncio.Task[None]] = set()

    def save(self, thread_id: str, state: AgentState, run_id: str) -> None:
        """The run's end state as the next checkpoint of LangGraph thread `thread_id`: the
        run's own id, or a conversation's, whose history then holds one checkpoint a turn."""
        task = asyncio.create_task(
            self._write(thread_id, state, run_id), name=f"checkpoint {run_id}"
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, thread_id: str, state: AgentState, run_id: str) -> None:
        config: RunnableConfig = {**_thread(thread_id), "metadata": {"run_id": run_id}}
        try:
            await self.graph.aupdate_state(config, dict(state), as_node="finalize")
        except Exception:  # the run store still holds the run; say so and go on
            log.exception("could not write the checkpoint of run %s", run_id)

    async def flush(self) -> None:
        """Wait for every checkpoint saved so far to be written."""
        await asyncio.gather(*self._pending)

    async def get(self, thread_id: str) -> StateSnapshot:
        """The state a run (or a conversation's last turn) ended in (empty values if none)."""
        await self.flush()
        return await self.graph.aget_state(_thread(thread_id))

    async def history(self, thread_id: str) -> list[StateSnapshot]:
        """A conversation's checkpoints, newest first: one per turn."""
        await self.flush()
        return [s async for s in self.graph.aget_state_history(_thread(thread_id))]


def _thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}
