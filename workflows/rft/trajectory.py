"""One Hint-infer trajectory as Hint-RFT keeps it: a graded batch result plus its transcript.

A `Trajectory` is a `SampleResult` with more fields, so the batch machinery (resume by problem
and sample, `summarize`) reads trajectory files as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from agent.segments import Segment, SegmentKind
from workflows.results import SampleResult


class Trajectory(SampleResult):
    question: str = ""
    prompt: str = ""  # the rendered chat prompt; segments continue it
    segments: list[Segment] = Field(default_factory=list)
    completion_tokens: int = 0
    hints: int = 0
    tool_errors: int = 0
    options: dict[str, Any] = Field(default_factory=dict)
    model: str = ""

    def count(self, kind: SegmentKind) -> int:
        return sum(1 for segment in self.segments if segment["kind"] == kind)


def read_trajectories(path: Path) -> Iterator[Trajectory]:
    """Every trajectory in the file, the last line per (problem, sample); torn lines skipped."""
    kept: dict[tuple[str, int], Trajectory] = {}
    if not path.is_file():
        raise FileNotFoundError(f"no trajectories at {path}: run `startbox rft collect` first")
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                trajectory = Trajectory.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                continue
            kept[trajectory.key] = trajectory
    yield from kept.values()


def write_trajectories(trajectories: list[Trajectory], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as lines:
        for trajectory in trajectories:
            lines.write(trajectory.model_dump_json() + "\n")
