"""Every known layout, from rows written after each benchmark's real fields, in every file
format the loader reads: the layout is named, the reference read as its authors meant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workflows.layout_rows import LAYOUT_ROWS, LCB_PRIVATE
from workflows.datasets import load
from workflows.judge.layouts import RowError, lcb_private


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.mark.parametrize("layout", sorted(LAYOUT_ROWS))
def test_layout_is_detected_and_read(layout: str, tmp_path: Path) -> None:
    _source, rows, expected = LAYOUT_ROWS[layout]
    data = load(str(write_jsonl(tmp_path / f"{layout}.jsonl", rows)))
    assert data.layout == layout
    assert data.bad_rows == []
    got = [(p.kind, p.reference) for p in data.problems]
    for (kind, reference), (got_kind, got_reference) in zip(expected, got, strict=True):
        assert got_kind == kind
        if reference is not None:
            assert got_reference == reference


def test_gpqa_options_are_shuffled_the_same_way_every_time(tmp_path: Path) -> None:
    rows = LAYOUT_ROWS["gpqa"][1]
    first = load(str(write_jsonl(tmp_path / "gpqa.jsonl", rows))).problems[0]
    again = load(str(write_jsonl(tmp_path / "gpqa2.jsonl", rows))).problems[0]
    assert first.options == again.options and first.reference == again.reference
    assert first.options is not None and first.reference is not None
    assert first.options["ABCD".index(first.reference)] == "10^-4 eV"
    assert f"({first.reference}) 10^-4 eV" in first.question


def test_code_layouts_carry_their_tests(tmp_path: Path) -> None:
    mbpp = load(str(write_jsonl(tmp_path / "mbpp.jsonl", LAYOUT_ROWS["mbpp"][1]))).problems[0]
    assert mbpp.entry_point == "remove_Occ" and mbpp.test is not None and "heo" in mbpp.test
    apps = load(str(write_jsonl(tmp_path / "apps.jsonl", LAYOUT_ROWS["apps"][1]))).problems
    assert [t.output for t in apps[0].stdio] == ["6\n", "5\n"]
    assert apps[1].entry_point == "double" and [c.expected for c in apps[1].calls] == [4, 10]
    lcb = load(str(write_jsonl(tmp_path / "lcb.jsonl", LAYOUT_ROWS["livecodebench"][1]))).problems
    assert [t.input for t in lcb[0].stdio] == ["3\n1 2 3\n", LCB_PRIVATE[0]["input"]]
    assert lcb[1].entry_point == "Solution().twice"
    assert [(c.args, c.expected) for c in lcb[1].calls] == [([3], 6), ([-1], -2)]


def test_private_tests_refuse_anything_but_plain_data() -> None:
    import base64
    import os
    import pickle
    import zlib

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    with pytest.raises(RowError, match="only plain data"):
        lcb_private(evil)


def test_formats_parquet_csv_json_and_datasets_directory(tmp_path: Path) -> None:
    import datasets

    rows = LAYOUT_ROWS["math"][1][:1]
    table = datasets.Dataset.from_list(rows)
    table.to_parquet(str(tmp_path / "math500.parquet"))
    table.save_to_disk(str(tmp_path / "math500_dir"))
    (tmp_path / "math500.json").write_text(json.dumps(rows), "utf-8")
    gpqa = LAYOUT_ROWS["gpqa"][1]
    datasets.Dataset.from_list(gpqa).to_csv(str(tmp_path / "gpqa_diamond.csv"))
    for name in ("math500.parquet", "math500_dir", "math500.json"):
        data = load(str(tmp_path / name))
        assert (data.layout, data.problems[0].reference) == ("math", rows[0]["answer"]), name
    assert load(str(tmp_path / "gpqa_diamond.csv")).layout == "gpqa"


def test_a_row_that_does_not_read_under_its_layout_is_reported(tmp_path: Path) -> None:
    rows = [
        {"question": "Which?", "choices": "['a', 'b']", "answer": 1},
        {"question": "Which?", "choices": "['a', 'b']", "answer": 7},  # no option H
        {"question": "Which?", "choices": "not a list", "answer": 0},
    ]
    data = load(str(write_jsonl(tmp_path / "mmlu.jsonl", rows)))
    assert [p.reference for p in data.problems] == ["B"]
    assert [b.line for b in data.bad_rows] == [2, 3]
    assert "not an option letter" in data.bad_rows[0].reason


def test_field_overrides_win_over_the_layout(tmp_path: Path) -> None:
    rows = [{"question": "q", "answer": "16 - 7 = 9\n#### 9", "alt": "10", "key": "k1"}]
    data = load(str(write_jsonl(tmp_path / "g.jsonl", rows)), reference_field="alt", id_field="key")
    assert (data.problems[0].id, data.problems[0].reference) == ("k1", "10")
