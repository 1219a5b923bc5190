"""`startbox batch bench` runs end to end (its figures go to docs/benchmarks.md, not asserts)."""

from __future__ import annotations

from workflows.bench import bench


async def test_bench_measures_every_mode() -> None:
    rows = await bench(jobs=3, workers=[2], concurrency=1)
    assert [(r.mode, r.workers, r.concurrency) for r in rows] == [
        ("in-process", 1, 1),
        ("queue", 1, 1),
        ("queue", 2, 1),  # the in-process row at concurrency 1 is measured once
    ]
    assert all(r.jobs == 3 and r.jobs_per_s > 0 for r in rows)
