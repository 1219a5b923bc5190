"""The outcome of one sandbox call; it crosses process boundaries, so it is a pydantic model."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator


class Status(StrEnum):
    ok = "ok"
    error = "error"  # the code raised; `error` holds the traceback trimmed to the user's code
    timeout = "timeout"  # wall clock ran out; the interpreter was killed
    oom = "oom"  # the memory limit was hit (MemoryError, stopped near the limit, or OOM-killed)
    crashed = "crashed"  # the interpreter died (segfault, os._exit, killed) or broke protocol
    rejected = "rejected"  # the input was refused before running


def clean_text(text: str) -> str:
    """Valid UTF-8: a lone surrogate becomes a backslash escape instead of breaking JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class Image(BaseModel):
    """A figure the code left open or showed, as PNG; width and height come from its header."""

    mime: str = "image/png"
    data: str = Field(description="The image bytes, base64.")
    width: int = Field(ge=0)
    height: int = Field(ge=0)


class ExecResult(BaseModel):
    status: Status
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    duration_ms: float = Field(0.0, description="How long the code ran.")
    wait_ms: float = Field(0.0, description="How long the call waited for a container first.")
    truncated: bool = False
    images: list[Image] = Field(default_factory=list)
    exit_code: int | None = Field(None, description="A whole program's exit code (run_program).")

    @field_validator("stdout", "stderr", "value", "error")
    @classmethod
    def _valid_utf8(cls, text: str | None) -> str | None:
        return None if text is None else clean_text(text)

    @property
    def ok(self) -> bool:
        return self.status is Status.ok
