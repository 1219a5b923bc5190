"""Hand-built trajectories: each filter rule and export boundary gets exactly the case it needs."""

from __future__ import annotations

from agent.segments import Segment, SegmentKind
from workflows.rft.trajectory import Trajectory

PROMPT = "<|im_start|>user\nWhat is 1234 * 5678?<|im_end|>\n<|im_start|>assistant\n"


def seg(kind: SegmentKind, text: str) -> Segment:
    return Segment(kind=kind, text=text)


def hinted(problem: str = "p1", sample: int = 0, **fields: object) -> Trajectory:
    """A correct Hint-infer run: prose, a hint opening the fence, code, its output, the answer."""
    segments = [
        seg("model", "I multiply the numbers."),
        seg("hint", "\n\nWait, maybe using Python here is a good idea.\n```python\n"),
        seg("code", "print(1234 * 5678)\n```"),
        seg("tool_output", "\n```output\n7006652\n```\n"),
        seg("model", "So the answer is \\boxed{7006652}."),
    ]
    base: dict[str, object] = {
        "dataset": "train", "problem_id": problem, "sample": sample, "kind": "math",
        "status": "ok", "answer": "7006652", "reference": "7006652", "correct": True,
        "question": "What is 1234 * 5678?", "prompt": PROMPT, "segments": segments,
        "tool_calls": 1, "hints": 1, "completion_tokens": 40,
    }  # fmt: skip
    return Trajectory.model_validate({**base, **fields})
