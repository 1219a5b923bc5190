"""The run store on a real SQLite file: writes leave the run's path, yet nothing is lost."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agent.events import Code, RunStarted, ThinkingDelta
from agent.store import FLUSH_DELAY, RunStore


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
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.flush()
        other.execute("ROLLBACK")
        other.close()
        await store.flush()  # the same rows, written once the lock is gone
        record = await store.get("r1")
    assert record is not None
    assert [e.type for e in record.events] == ["run_started"] + ["thinking_delta"] * 3 + ["code"]
