"""The run store on a real SQLite file: writes leave the run's path, yet nothing is lost."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from agent.errors import StoreUnavailable, StoreWriteError
from agent.events import Code, Error, RunFinished, RunStarted, ThinkingDelta
from agent.store import FLUSH_DELAY, RunStore
from agent.threads import ThreadStore


def _events(run_id: str, deltas: int) -> list[RunStarted | ThinkingDelta | Code]:
    events: list[RunStarted | ThinkingDelta | Code] = [
        RunStarted(question="q", options={}, model="m", profile="qwen3")
    ]
    events += [ThinkingDelta(text=f"t{i} ", phase="thinking") for i in range(deltas)]
    events.append(Code(index=1, code="print(1)"))
    for seq, event in enumerate(events, 1):
        event.run_id, event.seq = run_id, seq
    return events


async def test_reads_see_every_queued_write(tmp_path: Path) -> None:
    async with RunStore(tmp_path / "runs.db") as store:
        store.create("r1", "q", {"seed": 1})
        for event in _events("r1", 70):
            store.append(event)
        record = await store.get("r1")  # no explicit flush: the read writes the queue first
        assert record is not None and record.status == "running"
        assert [e.seq for e in record.events] == list(range(1, 73))
        assert record.events[-1].type == "code"
        store.finish("r1", "ok", "42")
        record = await store.get("r1", with_events=False)
    assert record is not None and (record.status, record.answer) == ("ok", "42")


async def test_queued_rows_reach_the_file_without_a_reader(tmp_path: Path) -> None:
    """What a crash may lose is bounded: the writer goes on its own, soon after a row queues."""
    path = tmp_path / "runs.db"
    async with RunStore(path) as store:
        store.create("r1", "q", {})
        for event in _events("r1", 2):
            store.append(event)
        with sqlite3.connect(path) as other:
            for _ in range(50):
                await asyncio.sleep(FLUSH_DELAY)
                if other.execute("SELECT count(*) FROM events").fetchone()[0] == 4:
                    break
            else:
                raise AssertionError("the queued rows were not written on their own")
            assert other.execute("SELECT status FROM runs").fetchall() == [("running",)]


async def test_a_locked_database_reports_at_flush_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with RunStore(path, busy_timeout=0.2) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another writer holds the file
        store.create("r1", "q", {})
        for event in _events("r1", 3):
            store.append(event)
        with pytest.raises(StoreWriteError, match="locked"):
            await store.flush()
        other.execute("ROLLBACK")
        other.close()
        await store.flush()  # the same rows, written once the lock is gone
        record = await store.get("r1")
    assert record is not None
    assert [e.type for e in record.events] == ["run_started"] + ["thinking_delta"] * 3 + ["code"]


OWNER = """
import asyncio, sys
from pathlib import Path
from agent.events import RunStarted
from agent.store import RunStore

async def main() -> None:
    async with RunStore(Path(sys.argv[1])) as store:
        store.create("theirs", "q", {})
        store.append(RunStarted(run_id="theirs", seq=1, question="q", options={}, model="m",
                                profile="qwen3"))
        await store.flush()
        print("stored", flush=True)
        await asyncio.sleep(300)

asyncio.run(main())
"""


async def test_runs_of_a_dead_process_end_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER, str(path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert owner.stdout is not None
        assert await asyncio.wait_for(owner.stdout.readline(), 60) == b"stored\n"
        async with RunStore(path) as store:  # its owner lives: the run is left alone
            record = await store.get("theirs")
            assert record is not None and record.status == "running"
    finally:
        owner.kill()  # SIGKILL: the run never ends on its own
        await owner.wait()
    async with RunStore(path) as store:
        record = await store.get("theirs")
    assert record is not None and record.status == "interrupted"
    assert record.finished_at is not None
    assert [e.type for e in record.events] == ["run_started", "error", "run_finished"]
    error, end = record.events[1:]
    assert isinstance(error, Error) and f":{owner.pid}:" in error.message
    assert isinstance(end, RunFinished) and end.status == "interrupted" and end.seq == 3
    async with RunStore(path) as store:  # opened again: ended once, not twice
        again = await store.get("theirs")
    assert again is not None and len(again.events) == 3


async def test_a_store_from_before_owners_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, created_at REAL NOT NULL, question TEXT "
            "NOT NULL, options TEXT NOT NULL, status TEXT NOT NULL, answer TEXT, finished_at REAL)"
        )
        old.execute("INSERT INTO runs VALUES ('old', 1.0, 'q', '{}', 'running', NULL, NULL)")
    async with RunStore(path) as store:
        store.create("new", "q", {})
        record, new = await store.get("old"), await store.get("new")
    assert record is not None and record.status == "interrupted"
    assert new is not None and new.status == "running"  # this process's own


async def test_health_names_why_the_store_cannot_take_writes(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    path = directory / "runs.db"
    async with RunStore(path) as store:
        assert await store.health() is None
        path.unlink()
        assert "was deleted" in (await store.health() or "")
        store.create("r1", "q", {})
        with pytest.raises(StoreWriteError, match="was deleted"):  # never silently dropped
            await store.flush()
        shutil.rmtree(directory)
        reason = await store.health()
        assert reason is not None and "directory" in reason and "missing" in reason
    async with RunStore(path) as store:  # a fresh file: writable again
        assert await store.health() is None
        # read-only even to root; not the -shm, which SQLite maps (a write to it would SIGBUS)
        files = [path, path.with_name("runs.db-wal"), path.parent]
        await chattr("+i", files)
        try:
            reason = await store.health()
            store.create("r2", "q", {})
            with pytest.raises(StoreWriteError, match="could not be written"):
                await store.flush()
        finally:
            await chattr("-i", files)
        assert reason is not None and "cannot be written" in reason, reason
        assert "STARTBOX_AGENT_STORE_PATH" in reason
        await store.flush()  # the same rows, once the file takes writes again
        assert (await store.get("r2")) is not None


async def chattr(flag: str, files: list[Path]) -> None:
    process = await asyncio.create_subprocess_exec("chattr", flag, *map(str, files))
    assert await process.wait() == 0


@pytest.mark.parametrize("case", ["parent is a file", "not a database"])
async def test_a_store_that_cannot_be_opened_names_the_path_and_the_fix(
    tmp_path: Path, case: str
) -> None:
    if case == "parent is a file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "runs.db"
    else:
        path = tmp_path / "runs.db"
        path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreUnavailable) as raised:
        async with RunStore(path):
            pass
    message = str(raised.value)
    assert str(path) in message and "STARTBOX_AGENT_STORE_PATH" in message
    assert "\n" not in message


async def test_a_store_that_fails_to_open_leaves_no_connection_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both stores of the file (runs, threads) close the connection of a failed enter: its
    aiosqlite worker thread would otherwise keep the process from exiting. Only this file's
    connections are looked at: other tests' fixtures may open theirs meanwhile."""
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:  # a `threads` table of another program: no owner column
        db.execute("CREATE TABLE threads (id TEXT PRIMARY KEY)")
    opened: list[aiosqlite.Connection] = []
    real = aiosqlite.connect

    def spy(database: str | Path, *args: Any, **kwargs: Any) -> aiosqlite.Connection:
        connection = real(database, *args, **kwargs)
        if Path(database) == path:
            opened.append(connection)
        return connection

    async def closed(connection: aiosqlite.Connection) -> bool:
        try:
            await connection.execute("SELECT 1")
        except ValueError:  # aiosqlite: "Connection closed"
            return True
        return False

    monkeypatch.setattr(aiosqlite, "connect", spy)
    async with RunStore(path) as runs:
        with pytest.raises(sqlite3.OperationalError, match="owner"):
            async with ThreadStore(runs):
                pass
        own, *others = opened
        assert not await closed(own) and others  # the run store's connection alone is open
        assert all([await closed(c) for c in others])
    path.write_text("not a database")
    with pytest.raises(StoreUnavailable, match="STARTBOX_AGENT_STORE_PATH"):
        async with RunStore(path):
            pass
    assert len(opened) > 1 + len(others)  # the failed open made one
    assert all([await closed(c) for c in opened])
