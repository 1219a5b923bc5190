"""`startbox agent show|runs` read stored runs back, as a user would after the fact, and
`startbox agent bench` reports what it measured."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from agent.service import Agent
from agent.settings import AgentSettings
from tests.agent.conftest import Script, collect


async def startbox(store: Path, *args: str, wait: float = 60) -> tuple[int, str, str]:
    env = {**os.environ, "STARTBOX_AGENT_STORE_PATH": str(store), "COLUMNS": "300"}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("startbox")), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), wait)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_show_and_runs_read_the_store(agent: Agent, script: Script) -> None:
    script("<think>\n```python\nprint(3)\n```\n", "</think>", "\\boxed{3}")
    events = await collect(agent)
    run_id, store = events[0].run_id, agent.settings.database
    code, out, _ = await startbox(store, "agent", "show", run_id, "--json")
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [e.seq for e in events]
    code, out, _ = await startbox(store, "agent", "show", run_id)
    assert code == 0 and "code #1" in out and "output #1" in out
    code, out, _ = await startbox(store, "agent", "runs", "--limit", "5")
    assert code == 0 and run_id in out
    code, _, err = await startbox(store, "agent", "show", "no-such-run")
    assert code == 1 and "no run" in err


async def test_bench_reports_overhead_with_and_without_persistence(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    args = ["agent", "bench", "--overhead-only", "--runs", "6", "--out", str(report)]
    home = AgentSettings().home
    before = set(home.glob("*.db"))
    code, out, err = await startbox(tmp_path / "runs.db", *args, wait=600)
    assert code == 0, err
    assert set(home.glob("*.db")) <= before  # its throwaway run stores are not left in the home
    rows = json.loads(report.read_text())["overhead"]
    assert {(r["persist"], r["loop"]) for r in rows} == {
        (persist, loop) for persist in (False, True) for loop in ("uvloop", "asyncio")
    }
    assert all(
        r["runs"] == 3 and r["rounds_per_run"] == 5 and r["p50_ms_per_round"] > 0 for r in rows
    )
    assert "orchestration overhead" in out


async def test_bench_measures_the_rest_api_and_code_running_runs(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    args = ["agent", "bench", "--overhead-only", "--runs", "2", "--api-runs", "4",
            "--code-seconds", "1", "--out", str(report)]  # fmt: skip
    code, out, err = await startbox(tmp_path / "runs.db", *args, wait=600)
    assert code == 0, err
    bench = json.loads(report.read_text())
    assert [(row["with_code"], row["runs"]) for row in bench["api"]] == [(True, 4), (False, 4)]
    assert all(row["runs_per_s"] > 0 and row["sse_p50_ms"] > 0 for row in bench["api"])
    runs = bench["code_runs"]
    assert runs["recycled_runs_per_s"] > 0 and runs["per_run_runs_per_s"] > 0, runs
    assert "REST API" in out and "code-running" in out
