"""`rft filter`: each rule drops what it names, the per-problem cap prefers diverse runs, and
the three hint modes shape the segments as documented."""

from __future__ import annotations

from agent.segments import joined
from tests.workflows.rft.helpers import hinted, seg
from workflows.rft.filter import (
    FilterConfig,
    apply_hints,
    filter_trajectories,
    rejection,
    repetition,
)

CONFIG = FilterConfig()


def test_a_clean_correct_tool_run_is_kept() -> None:
    assert rejection(hinted(), CONFIG) is None


def test_each_rule_names_its_drop() -> None:
    looping = hinted(segments=[seg("model", "I add one more. " * 30), *hinted().segments[1:]])
    empty_code = hinted(segments=[*hinted().segments[:2], seg("code", "\n```"),
                                  *hinted().segments[3:]])  # fmt: skip
    nothing = seg("tool_output", "\n```output\n(no output)\n```\n")
    silent = hinted(segments=[*hinted().segments[:3], nothing, *hinted().segments[4:]])
    cases = {
        "incorrect": hinted(correct=False, cause="wrong"),
        "no_tool_call": hinted(tool_calls=0),
        "repetitive": looping,
        "void_tool_round": empty_code,
        "tool_errors": hinted(tool_calls=2, tool_errors=2),
        "overlong": hinted(completion_tokens=5000),
    }
    assert {name: rejection(t, CONFIG) for name, t in cases.items()} == {n: n for n in cases}
    assert rejection(silent, CONFIG) == "void_tool_round"


def test_repetition_is_the_share_of_repeated_ngrams() -> None:
    assert repetition("a b c d e f", 2) == 0.0
    assert repetition("a b a b a b", 2) == 1 - 2 / 5


def test_at_most_m_per_problem_preferring_diverse_and_short() -> None:
    same = [hinted(sample=i, completion_tokens=40 + i) for i in range(3)]
    other = hinted(sample=3, completion_tokens=60, segments=[
        seg("model", "Counting the factors of each number separately first."),
        *hinted().segments[1:]])  # fmt: skip
    kept, report = filter_trajectories([*same, other], FilterConfig(per_problem=2))
    assert sorted(t.sample for t in kept) == [0, 3]  # the shortest, then the most different
    assert report.dropped == {"per_problem_cap": 2} and report.kept == 2
    assert {(d.sample, d.reason) for d in report.drops} == {(1, "per_problem_cap"),
                                                            (2, "per_problem_cap")}  # fmt: skip


def test_hint_modes() -> None:
    segments = hinted().segments
    assert apply_hints(segments, "mask") == segments
    kept = apply_hints(segments, "keep")
    assert "hint" not in {s["kind"] for s in kept} and joined(kept) == joined(segments)
    dropped = apply_hints(segments, "drop")
    assert "maybe using Python" not in joined(dropped)
    assert dropped[0] == seg("model", "I multiply the numbers.\n\n```python\n")  # as if spontaneous
    assert dropped[1:] == segments[2:]


def test_the_report_counts_every_drop() -> None:
    rows = [hinted(), hinted(problem="p2", correct=False), hinted(problem="p3", tool_calls=0)]
    kept, report = filter_trajectories(rows, CONFIG)
    assert [t.problem_id for t in kept] == ["p1"]
    assert report.dropped == {"incorrect": 1, "no_tool_call": 1} and report.total == 3
