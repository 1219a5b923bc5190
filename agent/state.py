"""The graph's typed state and the per-run context its nodes read.

State is what a checkpoint must hold to read a run back (the transcript, counters, route);
context is what a run uses but never persists (the model client, the sandbox session).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict

from agent.events import Phase
from agent.segments import Segment
from agent.settings import RunOptions
from model_host.client import CompletionClient
from model_host.profiles import ModelProfile, Sampling
from sandbox.pool import Session

Route = Literal["generate", "execute", "hint", "force_answer", "finalize"]


class AgentState(TypedDict):
    transcript: str  # the assistant's turn so far, appended after the rendered prompt
    segments: list[Segment]  # the transcript by author: joined, they are the transcript
    phase: Phase
    thinking_tokens: int
    answer_tokens: int
    prompt_tokens: int  # the last call's prompt, as the server counted it
    context_tokens: int  # tokens of prompt + transcript[:counted_chars]: only new text is counted
    counted_chars: int
    completion_tokens: int
    model_calls: int
    tool_calls: int
    hints: int
    reason: str  # why: the hint's trigger or the stop cause
    answer: str | None
    timings_ms: dict[str, float]


def initial_state() -> AgentState:
    return AgentState(
        transcript="",
        segments=[],
        phase="thinking",
        thinking_tokens=0,
        answer_tokens=0,
        prompt_tokens=0,
        context_tokens=0,
        counted_chars=0,
        completion_tokens=0,
        model_calls=0,
        tool_calls=0,
        hints=0,
        reason="",
        answer=None,
        timings_ms={},
    )


@dataclass
class RunContext:
    prompt: str  # the rendered chat prompt; the transcript continues it
    options: RunOptions
    client: CompletionClient
    session: Session
    profile: ModelProfile
    sampling: Sampling  # the profile's with the configured and the run's choices over it
    count_tokens: Callable[[str], int]
    round_tokens: int
    context_length: int
    context_margin: int
    rng: random.Random
