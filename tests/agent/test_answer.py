"""The one answer reader: extraction cases written after what models really emit."""

from __future__ import annotations

import pytest

from agent.answer import boxes, choice_answer, code_answer, last_boxed, math_answer
from agent.kinds import KINDS, kind_of

T = "<think>\n"  # a transcript prefix; math_answer(section, transcript)

# (name, answer section, thinking before it, expected answer)
MATH_CASES = [
    ("plain box", r"So the answer is $\boxed{42}$.", "", "42"),
    ("nested braces", r"$\boxed{\frac{1}{2}}$", "", r"\frac{1}{2}"),
    ("last box wins", r"First $\boxed{3}$, corrected: $\boxed{5}$", "", "5"),
    (
        "intermediate boxes in earlier lines",
        "We get $a=\\boxed{2}$.\n\nThen the sum is\n\\[\\boxed{17}\\]",
        "",
        "17",
    ),
    ("multi-part answer, one sentence", r"The roots are $\boxed{1}$ and $\boxed{2}$.", "", "1, 2"),
    ("multi-part with commas", r"$\boxed{3}, \boxed{4}, \boxed{5}$", "", "3, 4, 5"),
    ("multi-part with variables", r"$x = \boxed{1}$ and $y = \boxed{-2}$", "", "1, -2"),
    (
        "final answer after intermediate boxes",
        "So $a = \\boxed{255}$ and $b = \\boxed{200}$.\nThe final answer is $10{,}455$.",
        "",
        "10{,}455",
    ),
    (
        "final answer is, I hope it is correct",
        "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.",
        "",
        r"\frac{3}{4}",
    ),
    ("box only in thinking", "The result follows.", r"... so \boxed{12}", "12"),
    ("answer box beats thinking box", r"$\boxed{7}$", r"wrong \boxed{6}", "7"),
    ("no box: therefore final answer", "Therefore, the final answer is 7.", "", "7"),
    ("no box: answer colon", "Answer: 15", "", "15"),
    ("no box: closing display math", "The answer is\n\\[\n18\n\\]", "", "18"),
    ("no box: $$ line", "Thus\n$$ 36 $$", "", "36"),
    ("no box: plain last line", "Counting them:\n24", "", "24"),
    (
        "empty box in a code comment",
        "```python\n# print(r'\\boxed{}')\n```\nThe answer is 9",
        "",
        "9",
    ),
    ("empty box in quoted instruction", r"You asked for \boxed{} so: the answer is 11", "", "11"),
    ("trailing dot in box", r"$\boxed{3.}$", "", "3"),
    ("fbox", r"$\fbox{8}$", "", "8"),
    ("boxed with a space", r"so $\boxed 5$.", "", "5"),
    ("boxed with spaces before brace", r"$\boxed {2\pi}$", "", r"2\pi"),
    (
        "box spanning lines",
        "$$\\boxed{\n\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}\n}$$",
        "",
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
    ),
    ("text in box", r"$\boxed{\text{(C)}}$", "", r"\text{(C)}"),
    ("unclosed last box", r"$\boxed{4}$ then \boxed{5", "", "4"),
    (
        "box in code output is not read",
        "```output\n\\boxed{1}\n```\nSo the answer is $\\boxed{2}$",
        "",
        "2",
    ),
    ("decimal answer", r"$\boxed{0.25}$", "", "0.25"),
    ("negative", r"$\boxed{-3}$", "", "-3"),
    ("interval", r"$\boxed{(-\infty, 3]}$", "", r"(-\infty, 3]"),
    ("degrees", r"$\boxed{45^\circ}$", "", r"45^\circ"),
    ("dollar sign inside", r"$\boxed{\$12}$", "", r"\$12"),
    ("box then rephrase with same number", "$\\boxed{5}$\nThe answer is $5$.", "", "5"),
    ("nothing", "", "", None),
]


@pytest.mark.parametrize(
    ("section", "thinking", "expected"),
    [case[1:] for case in MATH_CASES],
    ids=[case[0] for case in MATH_CASES],
)
def test_math_extraction(section: str, thinking: str, expected: str | None) -> None:
    assert math_answer(section, T + thinking + section).answer == expected


CHOICE_CASES = [
    ("boxed letter", r"$\boxed{D}$", "D"),
    ("boxed text letter", r"$\boxed{\text{B}}$", "B"),
    ("parenthesised", "The correct option is (D).", "D"),
    ("letter with content", "D) 10^-4 eV", "D"),
    ("the answer is", "The answer is C", "C"),
    ("answer colon bold", "**Answer: A**", "A"),
    ("boxed letter with content", r"$\boxed{B. 12}$", "B"),
    ("lower case answer", "the answer is b.", "B"),
]


@pytest.mark.parametrize(
    ("section", "expected"), [c[1:] for c in CHOICE_CASES], ids=[c[0] for c in CHOICE_CASES]
)
def test_choice_extraction(section: str, expected: str) -> None:
    assert choice_answer(section, section).answer == expected


def test_boxes_balance_braces_and_skip_unclosed() -> None:
    assert [b.content for b in boxes(r"\boxed{ {a}{b} } \fbox{3} \boxed 7 \boxed{x")] == [
        " {a}{b} ",
        "3",
        "7",
    ]
    assert last_boxed(r"\boxed{1} \boxed{}") == "1"
    assert last_boxed("no answer") is None


def test_code_reads_the_last_python_block() -> None:
    text = "```python\na = 1\n```\ntext\n```python\nb = 2\n```"
    assert code_answer(text, text).answer == "b = 2"
    assert code_answer("no code", "no code").marked is False


def test_every_kind_has_instruction_and_reader() -> None:
    assert set(KINDS) == {"math", "choice", "code"}
    assert "\\boxed{}" in kind_of("math").instruction
    with pytest.raises(ValueError, match="use one of math, choice, code"):
        kind_of("essay")
