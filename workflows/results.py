"""Per-sample results as JSON lines, keyed by problem and sample, so reruns are idempotent.

Appending is the only write; readers keep the last line per key. A rerun therefore never
counts a sample twice, and a crash mid-write loses at most the line being written: before a
run appends, `prepare` cuts such a torn last line off (its sample is simply run again), so the
next line never lands glued to the fragment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ValidationError

from workflows.errors import ResultsError
from workflows.grading import Cause


class SampleResult(BaseModel):
    dataset: str
    problem_id: str
    sample: int
    kind: str
    status: str  # the agent run's: ok | error | cancelled
    answer: str | None = None
    reference: str | None = None
    correct: bool = False
    cause: Cause | None = None
    detail: str = ""
    thinking_tokens: int = 0
    answer_tokens: int = 0
    tool_calls: int = 0
    hint_calls: int = 0  # of tool_calls, those that continued a hint ("use python here")
    tool_errors: int = 0  # executions that did not end ok
    sandbox_ms: list[float] = []  # each execution's sandbox time
    budget_exhausted: bool = False  # the thinking budget ran out and the answer was forced
    layout: str = ""  # the dataset layout the problem was read under
    latency_ms: float = 0.0
    run_id: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem_id, self.sample)


def read_results(path: Path) -> dict[tuple[str, int], SampleResult]:
    """The last result per (problem, sample); a torn or foreign line is skipped."""
    results: dict[tuple[str, int], SampleResult] = {}
    if not path.exists():
        return results
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                result = SampleResult.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                continue
            results[result.key] = result
    return results


def append_result(path: Path, result: SampleResult) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(result.model_dump_json() + "\n")


def prepare(path: Path) -> int:
    """Make `path` ready for appending: its directory created, a torn last line (no newline:
    the writer was killed mid-line) cut off. Returns the bytes cut; ResultsError if the
    place cannot be written, before any solving starts."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+b") as out:
            size = out.seek(0, 2)
            if size == 0:
                return 0
            out.seek(max(0, size - 1))
            if out.read(1) == b"\n":
                return 0
            keep = _last_newline(out, size)
            out.truncate(keep)
            return size - keep
    except OSError as exc:
        raise ResultsError(
            f"cannot write results to {path} ({exc.strerror or exc}): pick another --out"
        ) from exc


def _last_newline(out: BinaryIO, size: int, block: int = 1 << 16) -> int:
    """The offset just after the last newline in the file (0 if there is none)."""
    end = size
    while end > 0:
        start = max(0, end - block)
        out.seek(start)
        chunk = out.read(end - start)
        if (at := chunk.rfind(b"\n")) >= 0:
            return start + at + 1
        end = start
    return 0
