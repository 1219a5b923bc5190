"""Problem kinds: one entry each, holding what the agent needs (the instruction appended to the
question, the reader of the answer). Graders live in `workflows.judge`, registered under the
same names; the agent may not import workflows, so the two halves meet by name.

Adding a kind: one `Kind` here (and its name in `ProblemKind`), one grader in workflows.judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from agent.answer import Extracted, choice_answer, code_answer, math_answer

ProblemKind = Literal["math", "choice", "code"]
TOOL_NOTE = (
    "You may write Python in ```python blocks; it runs, and its output follows in an "
    "```output block."
)


@dataclass(frozen=True)
class Kind:
    name: str
    summary: str  # one line for help texts and the UI
    instruction: str  # appended to the question
    extract: Callable[[str, str], Extracted]  # (answer section, whole transcript) -> answer
    lead: str = ""  # opens a budget-forced answer where `extract` reads (RunOptions.lead_answer)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "math",
            "a \\boxed{} answer, checked for mathematical equivalence",
            "Please reason step by step, and put your final answer within \\boxed{}. " + TOOL_NOTE,
            math_answer,
            "The final answer is \\boxed{",
        ),
        Kind(
            "choice",
            "one option letter, as \\boxed{D}",
            "Please reason step by step, and put the letter of the correct option within "
            f"\\boxed{{}}, for example \\boxed{{D}}. {TOOL_NOTE}",
            choice_answer,
            "The answer is \\boxed{",
        ),
        Kind(
            "code",
            "a final Python program, run against the tests",
            f"Solve the task in Python. {TOOL_NOTE} End with the complete solution in one "
            "```python block.",
            code_answer,
        ),
    )
}
assert set(KINDS) == set(get_args(ProblemKind)), "ProblemKind and KINDS name the same kinds"


def kind_of(name: str) -> Kind:
    """The registered kind; the error lists the ones there are."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}: use one of {', '.join(KINDS)}") from None
