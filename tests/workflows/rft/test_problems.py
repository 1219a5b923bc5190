"""`rft problems`: exact answers, reproducible by seed, and a train set never overlaps held-out."""

from __future__ import annotations

import math
from pathlib import Path

from workflows.rft.problems import FAMILIES, exclude_ids, generate, write


def test_sets_are_seeded_exact_and_kept_apart(tmp_path: Path) -> None:
    heldout = generate(90, seed=1)
    assert generate(90, seed=1) == heldout
    assert {p.family for p in heldout} == set(FAMILIES)
    product = next(p for p in heldout if p.family == "product")
    a, b = (int(x) for x in product.question.removeprefix("What is ").rstrip("?").split(" * "))
    assert int(product.answer) == a * b
    gcd = next(p for p in heldout if p.family == "gcd")
    x, y = (int(w.strip("?")) for w in gcd.question.split() if w.strip("?").isdigit())
    assert int(gcd.answer) == math.gcd(x, y)
    write(heldout, tmp_path / "heldout.jsonl")
    taken = exclude_ids([tmp_path / "heldout.jsonl"])  # read back the way the judge reads it
    assert taken == {p.id for p in heldout}
    train = generate(300, seed=2, exclude=taken)
    assert not {p.id for p in train} & taken and len({p.id for p in train}) == 300
