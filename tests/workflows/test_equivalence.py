"""The math judge against labelled (reference, prediction) pairs: the agreement rate, and each
case the issue names, both the ones to accept and the strictness to keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.judge.equivalence import equivalent, normalize

PAIRS = Path(__file__).parent / "data" / "equivalence_pairs.txt"


def pairs() -> list[tuple[bool, str, str]]:
    rows = []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        if line[:2] in ("+ ", "- "):
            reference, prediction = line[2:].split(" ;; ")
            rows.append(
                (
                    line[0] == "+",
                    reference.replace("\\n", "\n") if reference.startswith("\\n") else reference,
                    prediction,
                )
            )
    return rows


def test_agreement_with_the_labels_is_at_least_98_percent() -> None:
    rows = pairs()
    assert len(rows) >= 250
    misses = [(r, p, label) for label, r, p in rows if equivalent(r, p) is not label]
    assert 1 - len(misses) / len(rows) >= 0.98, misses


NAMED = [
    ("45", "45°", True),
    ("12", "12 dollars", True),
    ("300000", "3e5", True),
    ("4\\pi", "4pi", True),
    ("(-\\infty,3]", "x \\le 3", True),
    ("\\emptyset", "\\varnothing", True),
    ("1000", "1 000", True),
    ("4.5\\times10^{33}", "4.5e33", True),
    ("\n\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}\n", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    ("(0,1)", "[0,1]", False),
    ("\\text{east}", "\\text{west}", False),
    ("2", "2.000001", False),
    ("(-\\infty,3)", "x \\le 3", False),
]


@pytest.mark.parametrize(("reference", "prediction", "same"), NAMED)
def test_named_cases(reference: str, prediction: str, same: bool) -> None:
    assert equivalent(reference, prediction) is same


def test_normalize_keeps_meaning() -> None:
    assert normalize("1 < x \\le 2") == "(1,2]"
    assert normalize("0.1\\overline{6}") == "\\frac{1}{6}"
    assert normalize("x^2") == "x^2"
