"""The run store on a real SQLite file: writes leave the run's path, yet nothing is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.events import Code, RunStarted, ThinkingDelta
from agent.store import FLUSH_EVERY, RunStore


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
        await store.create("r1", "q", {"seed": 1})
        for event in _events("r1", FLUSH_EVERY + 5):
            await store.append(event)
        record = await store.get("r1")  # no explicit flush: the read waits for the writer
    assert record is not None and record.status == "running"
    assert [e.seq for e in record.events] == list(range(1, FLUSH_EVERY + 8))
    assert record.events[-1].type == "code"


async def test_a_locked_database_reports_at_flush_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with RunStore(path, busy_timeout=0.2) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another writer holds the file
        await store.create("r1", "q", {})
        for event in _events("r1", 3):
            await store.append(event)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.flush()
        other.execute("ROLLBACK")
        other.close()
        await store.flush()  # the same rows, written once the lock is gone
        record = await store.get("r1")
    assert record is not None
    assert [e.type for e in record.events] == ["run_started"] + ["thinking_delta"] * 3 + ["code"]
