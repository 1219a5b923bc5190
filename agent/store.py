"""The run store: every run and its events in SQLite, so any run can be read back by id.

Writes leave the run's path: `create`, `append` and `finish` only queue rows. One writer task
per store writes them `FLUSH_DELAY` after the first row queued, in one transaction with
whatever queued meanwhile, so a run costs a transaction or two instead of one per event. Every
read first writes what is queued, so readers see all of it; a crash of the process loses at
most the last `FLUSH_DELAY` of events. No transaction stays open between flushes, so other
writers of the file never wait on one.

Each run records its process (host + pid + process start time, as sandbox containers do). A
process that opens the store ends the runs left `running` by processes that are gone as
`interrupted`, with an error event and a final event, so every reader (SSE replay, cancel)
sees an end; runs of a live process, or of another host, are left alone.

Nothing is dropped silently: a failed write, or one into a file that was deleted or replaced
meanwhile, raises StoreWriteError at the next flush (every read flushes), and `health()` says
in one line why the store cannot take writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import aiosqlite
from pydantic import BaseModel, Field

from agent.errors import StoreUnavailable, StoreWriteError
from agent.events import EVENT_ADAPTER, Error, Event, RunFinished, RunStatus, Usage
from agent.segments import Segment
from sandbox.owner import owner_alive, owner_id

FLUSH_DELAY = 0.1  # seconds: how long queued rows wait for company
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    question TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    answer TEXT,
    finished_at REAL,
    owner TEXT NOT NULL DEFAULT '',  -- who asked: a hash of the API key
    process TEXT  -- which process runs it: host:pid:start time (sandbox.owner)
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC);
CREATE TABLE IF NOT EXISTS run_segments (
    run_id TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL);
"""
COLUMNS = "id, created_at, question, options, status, answer, finished_at, owner"
FIX = "set STARTBOX_AGENT_STORE_PATH to a writable file, or STARTBOX_AGENT_PERSIST=false"


async def connect(path: Path, busy_timeout: float = 30.0) -> aiosqlite.Connection:
    """A connection for the run store or the checkpoints: WAL, so readers never block the
    writer, and no fsync per commit (a crash of the process loses nothing; only a power loss
    may lose the last commits), which halves a checkpoint write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, timeout=busy_timeout)
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:  # its worker thread would otherwise keep the process from exiting
        await db.close()
        raise
    return db


def check_store(path: Path) -> None:
    """Opens the store once, synchronously, and takes a write lock: a command that serves
    runs checks this before it starts anything, so a bad path fails at once in one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=5)
        try:
            db.execute("BEGIN IMMEDIATE")  # a read-only or locked file fails here
            db.executescript(SCHEMA)  # commits
        finally:
            db.close()
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot open the run store {path} ({exc}): {FIX}") from None


class RunRecord(BaseModel):
    id: str
    created_at: float
    question: str
    options: dict[str, object]
    status: RunStatus
    answer: str | None = None
    finished_at: float | None = None
    owner: str = Field("", exclude=True)  # a hash of the API key that made it, never shown
    events: list[Event] = []


class Transcript(BaseModel):
    """A run's rendered prompt and its turn as typed segments (agent.segments)."""

    prompt: str
    segments: list[Segment]


class Database:
    """One aiosqlite connection held from `async with` to its end, on a file of the store:
    opened in WAL with the subclass's schema and `_prepare` (its migrations), and closed even
    when opening fails halfway (its worker thread would keep the process alive)."""

    schema: ClassVar[str]

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout  # how long a write waits for another writer's lock
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _open(self) -> None:
        db = await connect(self.path, self.busy_timeout)
        try:
            await db.executescript(self.schema)
            self._db = db
            await self._prepare()
            await db.commit()
        except BaseException:  # no __aexit__ follows a failed enter: close it here
            self._db = None
            await db.close()
            raise

    async def _prepare(self) -> None:
        """What must follow the schema in the same transaction (a subclass's migrations)."""

    async def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            name = type(self).__name__
            raise RuntimeError(f"use the store as `async with {name}(...) as store:`")
        return self._db


class RunStore(Database):
    schema = SCHEMA

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        super().__init__(path, busy_timeout)
        self._inode: int | None = None  # of the file opened: a deleted or replaced one differs
        self._process = owner_id()
        self._runs: list[tuple[str, float, str, str, str, str, str]] = []
        self._events: list[tuple[str, int, str]] = []
        self._ends: list[tuple[str, str | None, float, str]] = []
        self._segments: list[tuple[str, str, str]] = []  # see save_segments
        self._due = asyncio.Event()  # a reader waits: write at once
        self._writing = asyncio.Lock()  # one transaction at a time on the one connection
        self._writer: asyncio.Task[None] | None = None
        self._failure: StoreWriteError | None = None  # the writer's last error, raised by flush

    async def __aenter__(self) -> Self:
        try:
            await self._open()
            self._inode = self.path.stat().st_ino
            await self._end_orphans()
        except (sqlite3.Error, OSError) as exc:
            await self._close()
            raise StoreUnavailable(f"cannot open the run store {self.path}: {exc}; {FIX}") from exc
        return self

    async def _prepare(self) -> None:
        """Stores made before runs had owners or processes gain the columns (their old runs
        have no process, and count as of a process that is gone)."""
        async with self.db.execute("PRAGMA table_info(runs)") as cursor:
            columns = {row[1] async for row in cursor}
        if "owner" not in columns:
            await self.db.execute("ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        if "process" not in columns:
            await self.db.execute("ALTER TABLE runs ADD COLUMN process TEXT")

    async def _end_orphans(self) -> None:
        """End the runs whose owning process is gone (see the module docstring)."""
        async with self.db.execute("SELECT id, process FROM runs WHERE status = 'running'") as rows:
            running = [(str(run_id), process) async for run_id, process in rows]
        orphans = [(run_id, process) for run_id, process in running
                   if process is None or not owner_alive(process)]  # fmt: skip
        now = time.time()
        for run_id, process in orphans:
            async with self.db.execute(
                "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?", (run_id,)
            ) as cursor:
                row = await cursor.fetchone()
            seq = int(row[0]) if row else 0
            who = f"process {process}" if process else "an earlier process"
            error = Error(
                run_id=run_id, seq=seq + 1, where="interrupted",
                message=f"the {who} running this run ended before it finished; ask again",
            )  # fmt: skip
            end = RunFinished(
                run_id=run_id, seq=seq + 2, status="interrupted", usage=Usage(), timings_ms={}
            )
            await self.db.executemany(
                "INSERT OR IGNORE INTO events (run_id, seq, body) VALUES (?, ?, ?)",
                [(run_id, e.seq, e.model_dump_json()) for e in (error, end)],
            )
            await self.db.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ? "
                "WHERE id = ? AND status = 'running'",
                (now, run_id),
            )
        await self.db.commit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            try:
                await self.flush()
            finally:  # a write that failed again is reported, and the connection still closes
                await self._close()

    def create(
        self, run_id: str, question: str, options: dict[str, object], owner: str = ""
    ) -> None:
        row = (run_id, time.time(), question, json.dumps(options), "running", owner, self._process)
        self._runs.append(row)
        self._start_writer()

    def append(self, event: Event) -> None:
        self._events.append((event.run_id, event.seq, event.model_dump_json()))
        self._start_writer()

    def finish(self, run_id: str, status: RunStatus, answer: str | None) -> None:
        self._ends.append((status, answer, time.time(), run_id))
        self._start_writer()

    async def flush(self) -> None:
        """Write everything queued so far, now; a failed write raises StoreWriteError here."""
        self._due.set()
        if self._runs or self._events or self._ends or self._segments:
            self._start_writer()
        if self._writer is not None:
            await asyncio.shield(self._writer)
        self._due.clear()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    async def health(self) -> str | None:
        """None when the store takes writes, else one line saying why not (for `/readyz`, and
        to refuse a run up front rather than lose it)."""
        if (moved := self._moved()) is not None:
            return moved
        try:
            async with self._writing:
                await self.db.execute("INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)",
                                      (time.time(),))  # fmt: skip
                await self.db.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                await self.db.rollback()
            return f"the run store {self.path} cannot be written ({exc}): {FIX}"
        return None

    def _moved(self) -> str | None:
        """Why the file opened is no longer the store's path, if it is not."""
        if not self.path.parent.is_dir():
            return (
                f"the run store's directory {self.path.parent} is missing: restart to recreate it"
            )
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return f"the run store {self.path} was deleted: restart to recreate it"
        if inode != self._inode:
            return f"the run store {self.path} was replaced by another file: restart to use it"
        return None

    def _start_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_DELAY):
                await self._due.wait()
        while self._runs or self._events or self._ends or self._segments:
            self._due.clear()
            queued = runs, events, ends = self._runs, self._events, self._ends
            self._runs, self._events, self._ends = [], [], []
            segments, self._segments = self._segments, []
            try:
                async with self._writing:
                    await self._commit(runs, events, ends, segments)
            except Exception as exc:  # kept for the next flush, which also reports the error
                with contextlib.suppress(sqlite3.Error):
                    await self.db.rollback()
                self._runs[:0], self._events[:0], self._ends[:0] = queued
                self._segments[:0] = segments
                self._failure = StoreWriteError(
                    f"the run store {self.path} could not be written ({exc}); nothing was lost "
                    f"yet, it is retried at the next flush: {FIX}"
                )
                self._failure.__cause__ = exc
                return
            if (moved := self._moved()) is not None:  # committed into a file nobody will read
                lost = f"{len(runs)} new runs, {len(events)} events, {len(ends)} ends"
                self._failure = StoreWriteError(f"{lost} went into a file no one reads: {moved}")
                return

    async def _commit(
        self,
        runs: list[tuple[str, float, str, str, str, str, str]],
        events: list[tuple[str, int, str]],
        ends: list[tuple[str, str | None, float, str]],
        segments: list[tuple[str, str, str]],
    ) -> None:
        await self.db.executemany(
            "INSERT INTO runs (id, created_at, question, options, status, owner, process) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        await self.db.executemany(
            "INSERT OR REPLACE INTO events (run_id, seq, body) VALUES (?, ?, ?)", events
        )
        await self.db.executemany(
            "UPDATE runs SET status = ?, answer = ?, finished_at = ? WHERE id = ?", ends
        )
        await self._write_segments(segments)
        await self.db.commit()

    async def get(self, run_id: str, *, with_events: bool = True) -> RunRecord | None:
        await self.flush()
        query = f"SELECT {COLUMNS} FROM runs WHERE id = ?"
        async with self.db.execute(query, (run_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        record = _record(row)
        if with_events:
            record.events = await self.events(run_id)
        return record

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        await self.flush()
        query = "SELECT body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
        async with self.db.execute(query, (run_id, after)) as cursor:
            return [EVENT_ADAPTER.validate_json(body) async for (body,) in cursor]

    async def recent(self, limit: int = 20, owner: str | None = None) -> list[RunRecord]:
        """The newest runs; only `owner`'s when given."""
        await self.flush()
        where, args = ("WHERE owner = ?", (owner, limit)) if owner is not None else ("", (limit,))
        query = f"SELECT {COLUMNS} FROM runs {where} ORDER BY created_at DESC LIMIT ?"
        async with self.db.execute(query, args) as cursor:
            return [_record(row) async for row in cursor]

    # Segments: the run's transcript by author, one row per run, written with the other rows.

    def save_segments(self, run_id: str, prompt: str, segments: list[Segment]) -> None:
        """Queue the run's prompt and segments; a later save for the run replaces them."""
        self._segments.append((run_id, prompt, json.dumps(segments)))
        self._start_writer()

    async def _write_segments(self, rows: list[tuple[str, str, str]]) -> None:
        await self.db.executemany(
            "INSERT OR REPLACE INTO run_segments (run_id, prompt, body) VALUES (?, ?, ?)", rows
        )

    async def transcript(self, run_id: str) -> Transcript | None:
        """The run's prompt and segments, or None for a run that saved none (yet)."""
        await self.flush()
        query = "SELECT prompt, body FROM run_segments WHERE run_id = ?"
        async with self.db.execute(query, (run_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return Transcript(prompt=str(row[0]), segments=json.loads(str(row[1])))


def _record(row: aiosqlite.Row | tuple[object, ...]) -> RunRecord:
    run_id, created_at, question, options, status, answer, finished_at, owner = row
    return RunRecord(
        id=str(run_id),
        created_at=float(created_at),  # type: ignore[arg-type]
        question=str(question),
        options=json.loads(str(options)),
        status=status,
        answer=answer,
        finished_at=finished_at,
        owner=str(owner),
    )
