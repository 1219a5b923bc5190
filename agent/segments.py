"""Typed transcript segments: who wrote each piece of the assistant's turn.

The transcript stays one string (the model continues it); `segments` say what each span is:
`model` (the model's prose), `code` (a python block the model wrote, fences included), `hint`
(Hint-infer's inserted text), `forced` (the early-stop text the budget appended), `tool_output`
and `tool_error` (the output fence of a run that succeeded or failed). Joined, their texts are
the transcript, always; the prompt is kept apart. The UI, the run store and Hint-RFT's loss
masks all read this one record.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

SegmentKind = Literal["model", "hint", "forced", "code", "tool_output", "tool_error"]
AUTHORED: frozenset[SegmentKind] = frozenset({"model", "code"})  # what the model itself wrote


class Segment(TypedDict):
    kind: SegmentKind
    text: str


def add(segments: list[Segment], kind: SegmentKind, text: str) -> list[Segment]:
    """A new list with `text` appended; it joins the last segment when that has the same kind."""
    if not text:
        return segments
    if segments and segments[-1]["kind"] == kind:
        return [*segments[:-1], Segment(kind=kind, text=segments[-1]["text"] + text)]
    return [*segments, Segment(kind=kind, text=text)]


def authored(
    segments: list[Segment], before: str, text: str, code_start: str, code_end: str
) -> list[Segment]:
    """`text`, written by the model after transcript `before`, split into prose and code: a code
    segment runs from the opening ```python fence through the closing one."""
    close = f"\n{code_end}"
    start = before.rfind(code_start)
    in_code = start >= 0 and close not in before[start + len(code_start) :]
    while text:
        if in_code:
            end = text.find(close)
            cut = len(text) if end < 0 else end + len(close)
        else:
            begin = text.find(code_start)
            cut = len(text) if begin < 0 else begin
        kind: SegmentKind = "code" if in_code else "model"
        segments = add(segments, kind, text[:cut])
        text = text[cut:]
        if text:
            in_code = not in_code
    return segments


def joined(segments: list[Segment]) -> str:
    return "".join(segment["text"] for segment in segments)
