"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.events import Event, RunStatus, Usage
from agent.settings import ProblemKind
from agent.store import RunRecord


class RunRequest(BaseModel):
    """A question and optional per-run settings; budgets are capped by the server."""

    model_config = {"extra": "forbid"}

    question: str = Field(min_length=1)
    thinking_budget: int | None = Field(None, ge=0)
    answer_budget: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=0)
    min_tool_calls: int | None = Field(None, ge=0)
    hint_rounds: int | None = Field(None, ge=0)
    seed: int | None = None
    kind: ProblemKind | None = None
    timeout: float | None = Field(None, gt=0)


class RunCreated(BaseModel):
    id: str
    status: RunStatus


class RunList(BaseModel):
    runs: list[RunRecord]


class SolveResult(BaseModel):
    id: str
    status: RunStatus
    answer: str | None
    usage: Usage
    timings_ms: dict[str, float]
    events: list[Event]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, object]] | None = None


class ChatRequest(BaseModel):
    """The OpenAI chat-completions fields the facade honours; agent settings may ride along
    as extra fields (the `extra_body` of OpenAI clients)."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    thinking_budget: int | None = Field(None, ge=0)
    max_tool_calls: int | None = Field(None, ge=0)
    min_tool_calls: int | None = Field(None, ge=0)
    hint_rounds: int | None = Field(None, ge=0)
