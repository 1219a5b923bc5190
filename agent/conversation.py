"""Conversations: turns of a thread, each a run, over a kernel that lives across turns.

A thread's sandbox session stays open between turns, so `x` from turn 1 is there in turn 3.
An idle kernel is released after `kernel_ttl`; a tenant holds at most `max_kernels` (the least
recently used goes first). A turn that finds no kernel (released, or the API restarted) gets a
fresh one and replays the thread's cells that ran ok, in order: `kernel_restored`, or
`kernel_lost` when a replayed cell fails. Each turn is checkpointed in LangGraph's thread of
the conversation (thread id = conversation id), one checkpoint per turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from agent.events import Answer, Event, Execution, KernelLost, KernelRestored
from agent.service import Agent, Message
from agent.settings import RunOptions
from agent.threads import Thread, ThreadStore
from sandbox.pool import Session

log = logging.getLogger(__name__)
LOST = {"timeout", "oom", "crashed"}  # execution statuses after which the interpreter is new


class ThreadBusy(RuntimeError):
    """A turn of this thread is still running; a thread takes one turn at a time."""


@dataclass
class Kernel:
    tenant: str
    session: Session
    stack: contextlib.AsyncExitStack
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False


class Conversations:
    def __init__(self, agent: Agent, threads: ThreadStore) -> None:
        self.agent = agent
        self.threads = threads
        self.ttl = agent.settings.kernel_ttl
        self.max_kernels = agent.settings.max_kernels
        self.kernels: dict[str, Kernel] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Conversations:
        self._reaper = asyncio.create_task(self._reap(), name="kernel reaper")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for thread_id in list(self.kernels):
            await self.release(thread_id)

    def open_kernels(self, tenant: str) -> int:
        return sum(k.tenant == tenant for k in self.kernels.values())

    async def release(self, thread_id: str) -> None:
        kernel = self.kernels.pop(thread_id, None)
        if kernel is not None:
            await kernel.stack.aclose()

    def busy(self, thread_id: str) -> bool:
        """A turn of this process is running on the thread (one left `running` by a dead
        process does not count: nothing will end it)."""
        kernel = self.kernels.get(thread_id)
        return kernel is not None and kernel.busy

    async def begin(self, thread: Thread, run_id: str, question: str, thinking: bool | None) -> int:
        """Claim the thread for a new turn; returns the turn's index."""
        if self.busy(thread.id):
            raise ThreadBusy(f"thread {thread.id} is still answering its last turn; wait for it")
        return await self.threads.add_turn(thread.id, run_id, question, thinking)

    async def turn(
        self,
        thread: Thread,
        index: int,
        question: str,
        options: RunOptions,
        thinking: bool | None,
        run_id: str,
        messages: Sequence[Message] | None = None,
    ) -> AsyncIterator[Event]:
        """One turn of `thread`: its earlier turns (or `messages`) as history, its kernel as
        the sandbox."""
        kernel, fresh = await self._kernel(thread.id, thread.owner)
        kernel.busy = True
        answer: Answer | None = None
        lost = False

        async def setup() -> list[Event]:
            return (
                await self._replay(thread, index, kernel.session, options.code_timeout)
                if fresh
                else []
            )

        try:
            async for event in self.agent.solve(
                question,
                options,
                run_id,
                history=history(thread, index) if messages is None else messages,
                thinking=thinking,
                owner=thread.owner,
                session=kernel.session,
                setup=setup,
                conversation=thread.id,
            ):
                if isinstance(event, Answer):
                    answer = event
                if isinstance(event, Execution) and event.status in LOST:
                    lost = True
                if isinstance(event, KernelLost):
                    lost = True
                yield event
        except asyncio.CancelledError:  # stopped mid-cell maybe: its interpreter is gone
            lost = True
            raise
        finally:
            kernel.busy, kernel.last_used = False, time.monotonic()
            if lost:  # the interpreter restarted (or may have) mid-turn: the next turn replays
                await asyncio.shield(self.release(thread.id))
            reply = answer.text if answer else None
            await asyncio.shield(self.threads.set_reply(thread.id, index, reply))

    async def _kernel(self, thread_id: str, tenant: str) -> tuple[Kernel, bool]:
        """The thread's live kernel, or a new one (True: it must be rebuilt by replay)."""
        kernel = self.kernels.get(thread_id)
        if kernel is not None:
            return kernel, False
        while self.open_kernels(tenant) >= self.max_kernels:
            idle = [(k.last_used, t) for t, k in self.kernels.items() if k.tenant == tenant]
            idle = [(used, t) for used, t in idle if not self.kernels[t].busy]
            if not idle:
                break  # every kernel of the tenant is mid-turn: this one waits its turn at TTL
            await self.release(min(idle)[1])
        stack = contextlib.AsyncExitStack()
        session = await stack.enter_async_context(
            self.agent.pool.session(tenant or None, lazy=True)
        )
        kernel = Kernel(tenant=tenant, session=session, stack=stack)
        self.kernels[thread_id] = kernel
        return kernel, True

    async def _replay(
        self, thread: Thread, index: int, session: Session, timeout: float
    ) -> list[Event]:
        cells = await self.threads.cells(thread, before=index)
        if not cells:
            return []
        started = time.perf_counter()
        for number, code in enumerate(cells, 1):
            result = await session.run(code, timeout=timeout)
            if result.status != "ok":
                reason = (
                    f"replaying cell {number} of {len(cells)} gave {result.status}: "
                    f"{(result.error or result.stderr).strip()[-300:]}"
                )
                return [KernelLost(reason=reason)]
        return [KernelRestored(cells=len(cells), duration_ms=(time.perf_counter() - started) * 1e3)]

    async def _reap(self) -> None:
        """Release kernels idle for longer than the TTL."""
        while True:
            await asyncio.sleep(min(self.ttl / 4, 30.0))
            now = time.monotonic()
            for thread_id, kernel in list(self.kernels.items()):
                if not kernel.busy and now - kernel.last_used > self.ttl:
                    log.info("thread %s: kernel idle for %.0f s, released", thread_id, self.ttl)
                    await self.release(thread_id)


def history(thread: Thread, index: int) -> list[Message]:
    """The turns before `index` as chat messages: questions and final answers (the earlier
    reasoning is dropped, as Qwen3's templates do)."""
    messages: list[Message] = []
    for turn in thread.turns:
        if turn.index >= index:
            break
        if not (turn.reply or turn.answer):
            continue  # a turn that never answered (cancelled, interrupted) adds nothing
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.reply or turn.answer or ""})
    return messages
