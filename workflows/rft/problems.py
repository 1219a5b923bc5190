"""Generated computation problems with exact answers, where code helps a small model.

Each family draws its numbers from a `random.Random(seed)`; a problem's id is a hash of its
question, so two sets overlap exactly when they share an id, and `exclude` keeps a train set
clear of the held-out one whatever the seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from workflows.datasets import load


class GeneratedProblem(BaseModel):
    id: str
    family: str
    question: str
    answer: str


def _product(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(1000, 99999), rng.randint(1000, 99999)
    return f"What is {a} * {b}?", a * b


def _conditional_sum(rng: random.Random) -> tuple[str, int]:
    low, high, d = rng.randint(1, 200), rng.randint(500, 3000), rng.randint(3, 13)
    total = sum(n for n in range(low, high + 1) if n % d == 0)
    return f"What is the sum of all integers from {low} to {high} that are divisible by {d}?", total


def _conditional_count(rng: random.Random) -> tuple[str, int]:
    high, a, b = rng.randint(1000, 20000), rng.randint(3, 9), rng.randint(10, 19)
    count = sum(1 for n in range(1, high + 1) if n % a == 0 and n % b != 0)
    return (
        f"How many integers from 1 to {high} are divisible by {a} but not by {b}?",
        count,
    )


def _gcd(rng: random.Random) -> tuple[str, int]:
    k = rng.randint(2, 300)
    a, b = k * rng.randint(10, 3000), k * rng.randint(10, 3000)
    return f"What is the greatest common divisor of {a} and {b}?", math.gcd(a, b)


def _lcm(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(100, 5000), rng.randint(100, 5000)
    return f"What is the least common multiple of {a} and {b}?", math.lcm(a, b)


def _modpow(rng: random.Random) -> tuple[str, int]:
    base, exp, mod = rng.randint(2, 999), rng.randint(50, 5000), rng.randint(7, 9999)
    return f"What is {base}^{exp} mod {mod}?", pow(base, exp, mod)


def _ncr(rng: random.Random) -> tuple[str, int]:
    n = rng.randint(15, 40)
    k = rng.randint(3, n // 2)
    return f"What is the binomial coefficient C({n}, {k})?", math.comb(n, k)


def _digit_sum(rng: random.Random) -> tuple[str, int]:
    base, exp = rng.randint(2, 9), rng.randint(20, 120)
    return f"What is the sum of the digits of {base}^{exp}?", sum(map(int, str(base**exp)))


def _prime_count(rng: random.Random) -> tuple[str, int]:
    low = rng.randint(1, 5000)
    high = low + rng.randint(200, 5000)
    count = sum(1 for n in range(low, high + 1) if _is_prime(n))
    return f"How many prime numbers are there between {low} and {high}, inclusive?", count


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % p for p in range(2, math.isqrt(n) + 1))


FAMILIES: dict[str, Callable[[random.Random], tuple[str, int]]] = {
    "product": _product,
    "conditional_sum": _conditional_sum,
    "conditional_count": _conditional_count,
    "gcd": _gcd,
    "lcm": _lcm,
    "modpow": _modpow,
    "ncr": _ncr,
    "digit_sum": _digit_sum,
    "prime_count": _prime_count,
}


def problem_id(question: str) -> str:
    return hashlib.sha256(question.encode()).hexdigest()[:12]


def generate(
    n: int, seed: int, families: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> list[GeneratedProblem]:
    """`n` distinct problems, families taken in turn, none whose id is in `exclude`."""
    names = list(families or FAMILIES)
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; pick from {', '.join(FAMILIES)}")
    rng = random.Random(seed)
    taken = set(exclude)
    problems: list[GeneratedProblem] = []
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"could not draw {n} distinct problems; ask for fewer")
        family = names[len(problems) % len(names)]
        question, answer = FAMILIES[family](rng)
        ident = problem_id(question)
        if ident in taken:
            continue
        taken.add(ident)
        problems.append(GeneratedProblem(id=ident, family=family, question=question,
                                         answer=str(answer)))  # fmt: skip
    return problems


def exclude_ids(paths: Iterable[Path]) -> set[str]:
    """The ids of every problem in these JSONL sets (any layout the judge reads)."""
    return {p.id for path in paths for p in load(str(path), "math").problems}


def write(problems: list[GeneratedProblem], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as lines:
        for problem in problems:
            lines.write(json.dumps(problem.model_dump()) + "\n")
