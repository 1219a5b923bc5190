"""Threads (conversations) in SQLite, beside the runs they are made of.

A thread is an ordered list of turns; each turn is one run. The turn rows live in the run
store's file, so a turn's status and answer come from its run by a join, and a fork is a new
thread whose first turns point at the same runs.
"""

from __future__ import annotations

import time
import uuid

from pydantic import BaseModel, Field

from agent.events import Code, Execution, RunStatus
from agent.store import Database, RunStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS threads_owner ON threads (owner, updated_at DESC);
CREATE TABLE IF NOT EXISTS turns (
    thread_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    question TEXT NOT NULL,
    thinking INTEGER,
    reply TEXT,
    PRIMARY KEY (thread_id, idx)
);
"""


class Turn(BaseModel):
    index: int = Field(description="1-based.")
    run_id: str
    question: str
    answer: str | None = Field(description="The run's extracted answer.")
    status: RunStatus
    thinking: bool | None
    reply: str | None = Field(None, exclude=True)  # the answer section: the history's text


class ThreadSummary(BaseModel):
    id: str
    title: str | None
    created_at: float
    updated_at: float
    turns: int


class Thread(BaseModel):
    id: str
    title: str | None
    created_at: float
    updated_at: float
    turns: list[Turn]
    owner: str = Field("", exclude=True)


class ThreadStore(Database):
    """Its own connection to the run store's file (WAL: readers and writers do not block)."""

    schema = SCHEMA

    def __init__(self, runs: RunStore) -> None:
        super().__init__(runs.path, runs.busy_timeout)
        self.runs = runs

    async def create(self, owner: str, title: str | None) -> Thread:
        now = time.time()
        thread = Thread(
            id=uuid.uuid4().hex, title=title, created_at=now, updated_at=now, turns=[], owner=owner
        )
        await self.db.execute(
            "INSERT INTO threads (id, owner, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (thread.id, owner, title, now, now),
        )
        await self.db.commit()
        return thread

    async def get(self, thread_id: str) -> Thread | None:
        await self.runs.flush()  # the turns' statuses come from runs
        query = "SELECT id, owner, title, created_at, updated_at FROM threads WHERE id = ?"
        async with self.db.execute(query, (thread_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        query = (
            "SELECT t.idx, t.run_id, t.question, r.answer, r.status, t.thinking, t.reply "
            "FROM turns t LEFT JOIN runs r ON r.id = t.run_id WHERE t.thread_id = ? ORDER BY t.idx"
        )
        async with self.db.execute(query, (thread_id,)) as cursor:
            turns = [
                Turn(
                    index=idx,
                    run_id=run_id,
                    question=question,
                    answer=answer,
                    status=status or "running",
                    thinking=None if thinking is None else bool(thinking),
                    reply=reply,
                )
                async for idx, run_id, question, answer, status, thinking, reply in cursor
            ]
        return Thread(
            id=row[0], owner=row[1], title=row[2], created_at=row[3], updated_at=row[4], turns=turns
        )

    async def recent(self, owner: str | None, limit: int = 20) -> list[ThreadSummary]:
        """The newest threads; only `owner`'s unless None."""
        where, args = ("WHERE owner = ?", (owner, limit)) if owner is not None else ("", (limit,))
        query = (
            "SELECT id, title, created_at, updated_at, "
            "(SELECT COUNT(*) FROM turns WHERE thread_id = threads.id) "
            f"FROM threads {where} ORDER BY updated_at DESC LIMIT ?"
        )
        async with self.db.execute(query, args) as cursor:
            return [
                ThreadSummary(id=i, title=t, created_at=c, updated_at=u, turns=n)
                async for i, t, c, u, n in cursor
            ]

    async def delete(self, thread_id: str) -> None:
        await self.db.execute("DELETE FROM turns WHERE thread_id = ?", (thread_id,))
        await self.db.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
        await self.db.commit()

    async def add_turn(
        self, thread_id: str, run_id: str, question: str, thinking: bool | None
    ) -> int:
        """Appends a turn; returns its 1-based index."""
        await self.db.execute(
            "INSERT INTO turns (thread_id, idx, run_id, question, thinking) VALUES "
            "(?, (SELECT COALESCE(MAX(idx), 0) + 1 FROM turns WHERE thread_id = ?), ?, ?, ?)",
            (thread_id, thread_id, run_id, question, thinking),
        )
        await self.db.execute(
            "UPDATE threads SET updated_at = ? WHERE id = ?", (time.time(), thread_id)
        )
        await self.db.commit()
        async with self.db.execute(
            "SELECT idx FROM turns WHERE thread_id = ? AND run_id = ?", (thread_id, run_id)
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def set_reply(self, thread_id: str, index: int, reply: str | None) -> None:
        await self.db.execute(
            "UPDATE turns SET reply = ? WHERE thread_id = ? AND idx = ?", (reply, thread_id, index)
        )
        await self.db.commit()

    async def fork(self, thread: Thread, upto: int, owner: str) -> Thread:
        """A new thread of `owner` holding turns 1..upto of `thread` (the same runs)."""
        title = f"{thread.title or 'thread'} (fork at {upto})"
        fork = await self.create(owner, title)
        await self.db.execute(
            "INSERT INTO turns (thread_id, idx, run_id, question, thinking, reply) "
            "SELECT ?, idx, run_id, question, thinking, reply FROM turns "
            "WHERE thread_id = ? AND idx <= ?",
            (fork.id, thread.id, upto),
        )
        await self.db.commit()
        forked = await self.get(fork.id)
        assert forked is not None
        return forked

    async def cells(self, thread: Thread, before: int | None = None) -> list[str]:
        """The code of every cell that ran ok in the thread's turns, in order: what a replay
        runs to rebuild the kernel."""
        cells: list[str] = []
        for turn in thread.turns:
            if before is not None and turn.index >= before:
                break
            code: dict[int, str] = {}
            for event in await self.runs.events(turn.run_id):
                if isinstance(event, Code):
                    code[event.index] = event.code
                elif isinstance(event, Execution) and event.status == "ok" and event.index in code:
                    cells.append(code[event.index])
        return cells
