"""`rft filter`: which trajectories are worth training on, and what becomes of their hints.

Rules, in order (the first that fails names the drop): correct; used a tool; not repetitive
(share of repeated word n-grams in the model's own text); no void tool round (empty code, or
code that printed nothing); tool-error ratio at most the limit (rStar2's resample-on-correct
keeps the cleanest of the correct); not overlong. Then at most M per problem, the shortest
first and then the most different from those already kept.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from agent.segments import AUTHORED, Segment, add
from workflows.rft.trajectory import Trajectory

HintMode = Literal["keep", "mask", "drop"]
Reason = Literal[
    "incorrect", "no_tool_call", "repetitive", "void_tool_round", "tool_errors", "overlong",
    "per_problem_cap",
]  # fmt: skip
WORD = re.compile(r"\S+")
OUTPUT_BODY = re.compile(r"^\s*```output\n?(.*?)\n?```\s*$", re.DOTALL)
VOID_OUTPUTS = {"", "(no output)"}


class FilterConfig(BaseModel):
    ngram: int = Field(4, ge=1, description="Word n-grams counted for repetition.")
    max_repetition: float = Field(
        0.3, ge=0, le=1, description="Share of the model's n-grams that repeat an earlier one."
    )
    max_tool_error_ratio: float = Field(0.5, ge=0, le=1, description="Failed / all tool rounds.")
    max_tokens: int = Field(1024, ge=1, description="Completion tokens at most.")
    per_problem: int = Field(2, ge=1, description="Trajectories kept per problem at most.")
    require_tool: bool = Field(True, description="Drop runs that never called a tool.")
    hints: HintMode = Field("drop", description="keep: train on hints; mask: no loss; drop.")


class Dropped(BaseModel):
    problem_id: str
    sample: int
    reason: Reason


class FilterReport(BaseModel):
    total: int
    kept: int
    dropped: dict[str, int]  # reason -> trajectories
    hints: HintMode
    drops: list[Dropped]


def authored_text(segments: list[Segment]) -> str:
    return "".join(s["text"] for s in segments if s["kind"] in AUTHORED)


def repetition(text: str, n: int) -> float:
    """The share of word n-grams that already occurred earlier in the text."""
    words = WORD.findall(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def has_void_round(segments: list[Segment]) -> bool:
    """A code block with no code in it, or one whose run printed nothing at all."""
    for segment in segments:
        if segment["kind"] == "code":
            body = segment["text"]
            if body.startswith("```"):  # the model opened the fence itself: drop that line
                body = body.split("\n", 1)[1] if "\n" in body else ""
            if not body.replace("```", "").strip():
                return True
        elif segment["kind"] == "tool_output":
            match = OUTPUT_BODY.match(segment["text"])
            if match and match.group(1).strip() in VOID_OUTPUTS:
                return True
    return False


def rejection(t: Trajectory, config: FilterConfig) -> Reason | None:
    """Why this trajectory is not kept, or None."""
    if not t.correct:
        return "incorrect"
    if config.require_tool and t.tool_calls == 0:
        return "no_tool_call"
    if repetition(authored_text(t.segments), config.ngram) > config.max_repetition:
        return "repetitive"
    if has_void_round(t.segments):
        return "void_tool_round"
    if t.tool_calls and t.tool_errors / t.tool_calls > config.max_tool_error_ratio:
        return "tool_errors"
    if t.completion_tokens > config.max_tokens:
        return "overlong"
    return None


def _grams(t: Trajectory) -> set[tuple[str, ...]]:
    words = WORD.findall(authored_text(t.segments))
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def diverse(candidates: list[Trajectory], m: int) -> list[Trajectory]:
    """Up to m: the shortest first, then each time the one least like those already chosen
    (Jaccard distance of word trigrams), shorter on ties."""
    pool = sorted(candidates, key=lambda t: (t.completion_tokens, t.sample))
    chosen = pool[:1]
    grams = {id(t): _grams(t) for t in pool}

    def distance(t: Trajectory) -> float:
        mine = grams[id(t)]
        return min(1 - len(mine & grams[id(c)]) / (len(mine | grams[id(c)]) or 1) for c in chosen)

    rest = pool[1:]
    while rest and len(chosen) < m:
        best = max(rest, key=lambda t: (distance(t), -t.completion_tokens))
        chosen.append(best)
        rest.remove(best)
    return chosen


def apply_hints(segments: list[Segment], mode: HintMode) -> list[Segment]:
    """keep: hint text becomes trained text; mask: it stays, with no loss; drop: it goes, and
    only the code fence it opened remains, as if the model had opened it itself."""
    if mode == "mask":
        return segments
    out: list[Segment] = []
    for segment in segments:
        text = segment["text"]
        if segment["kind"] != "hint":
            out = add(out, segment["kind"], text)
        elif mode == "keep":
            out = add(out, "model", text)
        else:
            fence = text.rfind("```")
            lead = text[: len(text) - len(text.lstrip())]
            out = add(out, "model", (lead + text[fence:]) if fence >= 0 else "")
    return out


def filter_trajectories(
    trajectories: Iterable[Trajectory], config: FilterConfig
) -> tuple[list[Trajectory], FilterReport]:
    rows = list(trajectories)
    drops: list[Dropped] = []
    passing: dict[str, list[Trajectory]] = defaultdict(list)
    for t in rows:
        reason = rejection(t, config)
        if reason is None:
            passing[t.problem_id].append(t)
        else:
            drops.append(Dropped(problem_id=t.problem_id, sample=t.sample, reason=reason))
    kept: list[Trajectory] = []
    for candidates in passing.values():
        chosen = diverse(candidates, config.per_problem)
        kept += chosen
        drops += [
            Dropped(problem_id=t.problem_id, sample=t.sample, reason="per_problem_cap")
            for t in candidates
            if t not in chosen
        ]
    kept = [t.model_copy(update={"segments": apply_hints(t.segments, config.hints)}) for t in kept]
    report = FilterReport(
        total=len(rows),
        kept=len(kept),
        dropped=dict(Counter(d.reason for d in drops)),
        hints=config.hints,
        drops=drops,
    )
    return kept, report
