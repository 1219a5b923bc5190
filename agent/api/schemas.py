"""Request and response bodies of the REST API (the OpenAI facade's live in openai_schemas)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.events import Event, RunStatus, Usage
from agent.settings import ProblemKind
from agent.store import RunRecord
from agent.threads import ThreadSummary
from model_host.profiles import SamplingOverrides


class Strict(BaseModel):
    """Unknown fields and NaN/Infinity are refused (json.loads accepts both)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RunRequest(Strict):
    """A question and optional per-run settings; budgets are capped by the server."""

    question: str = Field(min_length=1)
    thinking_budget: int | None = Field(None, ge=0)
    answer_budget: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=0)
    min_tool_calls: int | None = Field(None, ge=0)
    hint_rounds: int | None = Field(None, ge=0)
    seed: int | None = None
    kind: ProblemKind | None = None
    timeout: float | None = Field(None, gt=0)
    sampling: SamplingOverrides | None = Field(
        None,
        description="This run's sampling over the server's default; a knob left out keeps it.",
    )
    thinking: bool | None = Field(
        None, description="Think before answering (Qwen3's enable_thinking); null: the default."
    )


class RunCreated(BaseModel):
    id: str
    status: RunStatus


class TurnCreated(RunCreated):
    thread_id: str
    turn: int


class RunList(BaseModel):
    runs: list[RunRecord]


class SolveResult(BaseModel):
    id: str
    status: RunStatus
    answer: str | None
    usage: Usage
    timings_ms: dict[str, float]
    events: list[Event]


class ThreadCreate(Strict):
    title: str | None = Field(None, max_length=200)


class ThreadFork(Strict):
    turn: int = Field(ge=1, description="The last turn the fork keeps.")


class ThreadList(BaseModel):
    threads: list[ThreadSummary]
