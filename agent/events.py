"""Typed trace events: one JSON object per step, the same for the CLI, SSE, UI, store and batch.

Each event carries the run id and a sequence number, so a client can resume a stream after
the last event it saw.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from sandbox.result import ExecResult

Phase = Literal["thinking", "answer"]
RunStatus = Literal[
    "running", "ok", "error", "cancelled", "interrupted"
]  # interrupted: its process died


class Usage(BaseModel):
    prompt_tokens: int = 0  # the last call's prompt: what the context held at the end
    completion_tokens: int = 0
    thinking_tokens: int = 0
    answer_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    hints: int = 0


class _Event(BaseModel):
    run_id: str = ""
    seq: int = 0
    ts: float = Field(default_factory=time.time)


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    question: str
    options: dict[str, Any]
    model: str
    profile: str
    thinking: bool | None = Field(None, description="Whether this run thinks (None: no mode).")
    notes: list[str] = Field(default_factory=list, description="Settings that changed nothing.")


class ThinkingDelta(_Event):
    type: Literal["thinking_delta"] = "thinking_delta"
    text: str
    phase: Phase


class Hint(_Event):
    type: Literal["hint"] = "hint"
    text: str
    reason: str


class Code(_Event):
    type: Literal["code"] = "code"
    index: int
    code: str


class Execution(_Event, ExecResult):
    """A sandbox result (status, stdout, stderr, value, error, duration_ms, truncated) plus
    its place in the run and what the model was shown."""

    type: Literal["execution"] = "execution"
    index: int
    output: str = Field(description="The text shown to the model in the output fence.")


class BudgetExhausted(_Event):
    type: Literal["budget_exhausted"] = "budget_exhausted"
    budget: int
    used: int


class Answer(_Event):
    type: Literal["answer"] = "answer"
    text: str = Field(description="The answer section (after the thinking).")
    answer: str | None = Field(description="\\boxed{} content, or the final program for code.")
    extracted: bool = Field(description="False when no \\boxed{} / code block was found.")
    stop_cause: str = Field(description="eos, budget, context, tool_limit ...")


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: RunStatus
    answer: str | None = None
    usage: Usage
    timings_ms: dict[str, float]


class Error(_Event):
    type: Literal["error"] = "error"
    message: str
    where: str


class KernelRestored(_Event):
    """A thread's kernel was gone (idle TTL, restart): it was rebuilt by replaying cells."""

    type: Literal["kernel_restored"] = "kernel_restored"
    cells: int
    duration_ms: float = 0.0


class KernelLost(_Event):
    """A thread's kernel could not be rebuilt: this turn starts from a fresh interpreter."""

    type: Literal["kernel_lost"] = "kernel_lost"
    reason: str


class ContextTrimmed(_Event):
    """Earlier turns did not fit the context window and were left out of the prompt."""

    type: Literal["context_trimmed"] = "context_trimmed"
    dropped_turns: int


Event = Annotated[
    RunStarted
    | ThinkingDelta
    | Hint
    | Code
    | Execution
    | BudgetExhausted
    | Answer
    | RunFinished
    | Error
    | KernelRestored
    | KernelLost
    | ContextTrimmed,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
