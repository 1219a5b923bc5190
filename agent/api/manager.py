"""Runs in the background of the API: start, follow live, wait, cancel.

A run's events are kept in memory while it runs, so any number of SSE readers can follow it
and resume after the last event they saw; finished runs are replayed from the store.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from agent.api.metrics import Metrics
from agent.conversation import Conversations
from agent.errors import StoreUnavailable
from agent.events import Event, RunFinished
from agent.service import Agent, Message
from agent.settings import RunOptions
from agent.threads import Thread

KEEP_FINISHED = 60.0  # seconds a finished run stays in memory for late SSE readers


class TooBusy(RuntimeError):
    """Too many runs at once."""


class UnknownRun(KeyError):
    pass


@dataclass
class LiveRun:
    id: str
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    done: bool = False
    task: asyncio.Task[None] | None = None

    def moved_past(self, index: int) -> bool:
        return self.done or len(self.events) > index


class RunManager:
    def __init__(
        self,
        agent: Agent,
        limit: int,
        metrics: Metrics,
        conversations: Conversations | None = None,
    ) -> None:
        self.agent = agent
        self.limit = limit
        self.metrics = metrics
        self.conversations = conversations
        self.live: dict[str, LiveRun] = {}

    @property
    def running(self) -> int:
        return sum(not run.done for run in self.live.values())

    async def admit(self, question: str) -> str:
        """The checked question, if a run may start now; raises QuestionError, TooBusy or
        StoreUnavailable at once, before anything runs."""
        question = self.agent.check_question(question)
        if self.running >= self.limit:
            raise TooBusy(f"{self.limit} runs are already running")
        if (problem := await self.agent.store_problem()) is not None:
            raise StoreUnavailable(problem)
        return question

    async def start(
        self,
        question: str,
        options: RunOptions,
        owner: str = "",
        *,
        history: Sequence[Message] = (),
        thinking: bool | None = None,
    ) -> str:
        """Start a run in the background; the admission errors are raised at once. Returns
        once the run is in the store, so its id can be read at once."""
        question = await self.admit(question)
        run_id = uuid.uuid4().hex
        events = self.agent.solve(
            question, options, run_id, history=history, thinking=thinking, owner=owner
        )
        return await self._launch(run_id, events)

    async def start_turn(
        self,
        thread: Thread,
        question: str,
        options: RunOptions,
        thinking: bool | None,
        history: Sequence[Message] | None = None,
    ) -> tuple[str, int]:
        """Start the next turn of a thread; returns its run id and turn number. `history`
        replaces the thread's own earlier turns in the prompt (a chat client's messages)."""
        assert self.conversations is not None
        question = await self.admit(question)
        run_id = uuid.uuid4().hex
        index = await self.conversations.begin(thread, run_id, question, thinking)
        events = self.conversations.turn(
            thread, index, question, options, thinking, run_id, history
        )
        return await self._launch(run_id, events), index

    async def _launch(self, run_id: str, events: AsyncIterator[Event]) -> str:
        run = LiveRun(id=run_id)
        self.live[run.id] = run
        run.task = asyncio.create_task(self._drive(run, events), name=run.id)
        async with run.changed:  # run_started: the run is stored (a bounded wait: no I/O)
            await run.changed.wait_for(functools.partial(run.moved_past, 0))
        return run.id

    async def _drive(self, run: LiveRun, events: AsyncIterator[Event]) -> None:
        self.metrics.active.inc()
        try:
            async for event in events:
                await self._publish(run, [event])
        finally:
            self.metrics.active.dec()
            if not run.events or run.events[-1].type != "run_finished":
                # cancelled: the agent stored its final events but could not yield them
                store = self.agent.store
                tail = (
                    await store.events(run.id, run.events[-1].seq if run.events else 0)
                    if store
                    else []
                )
                await asyncio.shield(self._publish(run, tail))
            run.done = True
            async with run.changed:
                run.changed.notify_all()
            asyncio.get_running_loop().call_later(KEEP_FINISHED, self.live.pop, run.id, None)

    async def _publish(self, run: LiveRun, events: list[Event]) -> None:
        for event in events:
            self.metrics.observe(event)
        run.events.extend(events)
        async with run.changed:
            run.changed.notify_all()

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        """Events with seq > `after`, live until the run finishes."""
        run = self.live.get(run_id)
        if run is None:
            if (
                self.agent.store is None
                or await self.agent.store.get(run_id, with_events=False) is None
            ):
                raise UnknownRun(run_id)
            for event in await self.agent.store.events(run_id, after):
                yield event
            return
        index = next((i for i, e in enumerate(run.events) if e.seq > after), len(run.events))
        while True:
            while index < len(run.events):
                yield run.events[index]
                index += 1
            if run.done:
                return
            async with run.changed:
                await run.changed.wait_for(functools.partial(run.moved_past, index))

    async def wait(self, run_id: str) -> RunFinished:
        """Block until the run finishes (callers bound this with a timeout)."""
        finished = [e async for e in self.follow(run_id) if isinstance(e, RunFinished)]
        return finished[-1]

    async def cancel(self, run_id: str) -> bool:
        """Cancel a running run (its sandbox is released); False if it already finished."""
        run = self.live.get(run_id)
        if run is None or run.done or run.task is None:
            if run is None and (
                self.agent.store is None
                or await self.agent.store.get(run_id, with_events=False) is None
            ):
                raise UnknownRun(run_id)
            return False
        run.task.cancel()
        await asyncio.wait({run.task}, timeout=30)
        return True

    async def shutdown(self) -> None:
        tasks = [run.task for run in self.live.values() if run.task and not run.done]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=30)
