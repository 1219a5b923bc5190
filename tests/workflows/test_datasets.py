"""Datasets: flexible fields, bad rows skipped with their line, the built-in sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflows.datasets import load, load_humaneval


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fields_are_found_under_their_usual_names(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "problem": "1+1?", "answer": "2"},
        {"question": "2+2?", "answer": "She has 2 + 2 = 4.\n#### 4"},
        {"idx": 7, "prompt": "3+3?", "solution": "so it is \\boxed{\\frac{12}{2}}."},
        {"task_id": "t", "question": "4+4?", "final_answer": "8"},
    ]
    data = load(str(write(tmp_path / "set.jsonl", *map(json.dumps, rows))))
    assert data.bad_rows == []
    assert [(p.id, p.question, p.reference) for p in data.problems] == [
        ("a", "1+1?", "2"),
        ("line-2", "2+2?", "4"),
        ("7", "3+3?", "\\frac{12}{2}"),
        ("t", "4+4?", "8"),
    ]
    assert {p.dataset for p in data.problems} == {"set"}


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        json.dumps({"id": "ok", "problem": "1+1?", "answer": "2"}),
        "{not json",
        json.dumps({"id": "q", "answer": "3"}),
        "",
        json.dumps(["a list"]),
        json.dumps({"id": "ok", "problem": "again", "answer": "2"}),
        json.dumps({"id": "noref", "problem": "x?", "solution": "no box here"}),
        json.dumps({"id": "fine", "problem": "2+3?", "answer": 5}),
    )
    data = load(str(path))
    assert [p.id for p in data.problems] == ["ok", "fine"]
    assert data.problems[1].reference == "5"
    assert [(b.line, b.reason.split(" ")[0]) for b in data.bad_rows] == [
        (2, "not"),
        (3, "no"),
        (5, "not"),
        (6, "duplicate"),
        (7, "no"),
    ]


def test_field_overrides(tmp_path: Path) -> None:
    row = {"key": "k1", "text": "What?", "gold": "11", "answer": "wrong field"}
    data = load(
        str(write(tmp_path / "o.jsonl", json.dumps(row))),
        question_field="text",
        reference_field="gold",
        id_field="key",
    )
    assert [(p.id, p.question, p.reference) for p in data.problems] == [("k1", "What?", "11")]


def test_built_in_sets() -> None:
    humaneval = load_humaneval()
    assert len(humaneval.problems) == 164
    first = humaneval.problems[0]
    assert (first.id, first.kind) == ("HumanEval/0", "code")
    assert first.entry_point == "has_close_elements"
    sample = load("sample")
    assert len(sample.problems) >= 5 and sample.bad_rows == []
    assert all(p.reference for p in sample.problems)


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="humaneval"):
        load(str(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize("name", ["aime24", "amc23", "gsm8k_test"])
def test_shared_benchmarks_load_cleanly(name: str) -> None:
    path = Path(__file__).parents[3] / "shared" / "data" / f"{name}.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    data = load(str(path))
    assert data.bad_rows == [] and data.problems
    assert all(p.reference and "####" not in p.reference for p in data.problems)
