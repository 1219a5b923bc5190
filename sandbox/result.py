"""The outcome of one sandbox call; it crosses process boundaries, so it is a pydantic model."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Status(StrEnum):
    ok = "ok"
    error = "error"  # the code raised; `error` holds the traceback trimmed to the user's code
    timeout = "timeout"  # wall clock ran out; the container was killed
    oom = "oom"  # the memory limit was hit
    crashed = "crashed"  # the interpreter died (segfault, os._exit, killed)
    rejected = "rejected"  # the input was refused before running


class ExecResult(BaseModel):
    status: Status
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    duration_ms: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status is Status.ok
