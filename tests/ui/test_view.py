"""The event -> view model, fed with the agent's own event types as JSON (what the API sends)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from agent.events import (
    EVENT_ADAPTER,
    Answer,
    BudgetExhausted,
    Code,
    ContextTrimmed,
    Error,
    Execution,
    Hint,
    KernelLost,
    KernelRestored,
    RunFinished,
    RunStarted,
    ThinkingDelta,
    Usage,
)
from ui.view import (
    HANDLERS,
    Cell,
    Conversation,
    HintStep,
    Notice,
    Text,
    TraceView,
    thread_label,
)

HINT = "Wait, maybe using python here is a good idea."
OPTIONS = {"thinking_budget": 100, "answer_budget": 20, "max_tool_calls": 2, "kind": "math"}


def as_json(*events: Any) -> list[dict[str, Any]]:
    """Events numbered like a run's, as the API serialises them."""
    out = []
    for seq, event in enumerate(events, start=1):
        event.run_id, event.seq = "r1", seq
        out.append(json.loads(event.model_dump_json()))
    return out


def deltas(text: str, phase: str = "thinking") -> list[ThinkingDelta]:
    """One delta per word with its trailing space, as a model streams tokens."""
    return [ThinkingDelta(text=word, phase=phase) for word in re.findall(r"\S+\s*|\s+", text)]


def started() -> RunStarted:
    return RunStarted(question="6 * 7?", options=OPTIONS, model="m", profile="qwen3")


def finished(status: str = "ok", **usage: int) -> RunFinished:
    answer = "42" if status == "ok" else None
    timings = {"model": 12.5, "sandbox": 3.0}
    return RunFinished(status=status, answer=answer, usage=Usage(**usage), timings_ms=timings)


def view_of(*events: Any) -> TraceView:
    view = TraceView()
    for event in as_json(*events):
        view.apply(event)
    return view


def test_a_full_run_folds_into_steps() -> None:
    events = (
        started(),
        *deltas("<think>\nLet me compute. ```python\nx = 6 * 7\nprint(x)\n```"),
        Code(index=1, code="x = 6 * 7\nprint(x)"),
        Execution(index=1, status="ok", stdout="42\n", output="42"),
        *deltas("So 42.</think>"),
        *deltas("\n\nThe answer is \\boxed{42}.", "answer"),
        Answer(text="The answer is \\boxed{42}.", answer="42", extracted=True, stop_cause="eos"),
        finished(thinking_tokens=9, answer_tokens=4, tool_calls=1),
    )
    view = view_of(*events)
    kinds = [type(step).__name__ for step in view.steps]
    assert kinds == ["Text", "Cell", "Text", "Text"]
    first = view.steps[0]
    assert isinstance(first, Text) and first.shown == "Let me compute."  # fence and marker gone
    cell = view.steps[1]
    assert isinstance(cell, Cell) and cell.output is not None
    assert (cell.code, cell.output.stdout, cell.output.ok) == ("x = 6 * 7\nprint(x)", "42\n", True)
    assert [(s.phase, s.shown) for s in view.steps[2:]] == [  # type: ignore[union-attr]
        ("thinking", "So 42."),
        ("answer", "The answer is \\boxed{42}."),
    ]
    assert view.status == "ok" and not view.running and view.failure is None
    assert view.final is not None and view.final.answer == "42"
    assert view.question == "6 * 7?" and view.model == "m" and view.last_seq == len(events)
    assert ("tool calls", 1) in view.usage_rows()
    assert view.timing_rows() == [("model", 12.5), ("sandbox", 3.0)]


def test_meters_count_deltas_live_then_take_the_exact_usage() -> None:
    events = as_json(started(), *deltas("a b c d e"), *deltas("x y", "answer"),
                     finished(thinking_tokens=7, answer_tokens=3))  # fmt: skip
    view = TraceView()
    for event in events[:-1]:
        view.apply(event)
    live = {m.phase: m for m in view.meters()}
    thinking = live["thinking"]
    assert (thinking.used, thinking.budget, thinking.exact) == (5, 100, False)
    assert live["answer"].label == "answer: ~2 / 20 tokens"
    assert abs(live["thinking"].fraction - 0.05) < 1e-9
    view.apply(events[-1])
    exact = {m.phase: m for m in view.meters()}
    assert (exact["thinking"].used, exact["thinking"].exact) == (7, True)
    assert exact["answer"].label == "answer: 3 / 20 tokens"


def test_a_meter_is_full_at_most() -> None:
    view = view_of(started(), *deltas(" ".join(["w"] * 150)))
    assert view.meters()[0].fraction == 1.0


def test_hints_budget_and_errors_are_marked() -> None:
    view = view_of(
        started(),
        *deltas("<think>\nEasy.</think>"),
        Hint(text=f"\n\n{HINT}\n```python\n", reason="thinking_ended"),
        *deltas("print(4)\n```"),
        Code(index=1, code="print(4)"),
        Execution(index=1, status="error", stderr="boom\n", error="ZeroDivisionError", output="x"),
        BudgetExhausted(budget=100, used=101),
        Error(message="model host returned 500", where="generate"),
        finished("error"),
    )
    hint = view.steps[1]
    assert isinstance(hint, HintStep) and hint.shown == HINT
    cell = view.steps[2]
    assert isinstance(cell, Cell) and cell.code == "print(4)"  # the text before it lost the code
    assert cell.output is not None and not cell.output.ok and cell.output.stderr == "boom\n"
    notices = [s for s in view.steps if isinstance(s, Notice)]
    assert [n.kind for n in notices] == ["warning", "error"]
    assert "101 of 100" in notices[0].message
    assert view.failure == "The run failed: model host returned 500 (in generate)"


def test_a_rejected_call_takes_its_code_from_the_text() -> None:
    view = view_of(
        started(),
        *deltas("<think>\nMore: ```python\nprint(1)\n```"),
        Execution(index=3, status="rejected", error="Code execution limit reached", output="x"),
    )
    cell = view.steps[-1]
    assert isinstance(cell, Cell) and cell.code == "print(1)" and cell.output is not None
    assert cell.output.error == "Code execution limit reached"


def test_cancelled_and_silent_failures_say_so() -> None:
    assert view_of(started(), finished("cancelled")).failure == (
        "The run was cancelled before it finished."
    )
    assert "API log" in (view_of(started(), finished("error")).failure or "")
    assert view_of(started()).failure is None


def test_a_record_reopens_and_its_final_status_wins() -> None:
    events = as_json(started(), *deltas("hi there"))
    record = {"id": "r1", "question": "6 * 7?", "options": OPTIONS, "status": "cancelled",
              "events": events}  # fmt: skip
    view = TraceView.from_record(record)
    assert view.status == "cancelled" and view.last_seq == 3
    assert not view.apply(events[1])  # already seen: a resumed stream repeats nothing
    running = TraceView.from_record({**record, "status": "running"})
    assert running.running


def test_the_view_handles_every_event_type_the_api_sends() -> None:
    """The UI mirrors the events by hand (it imports nothing of the API): a new event type in
    agent/events.py fails here until the UI learns to show it."""
    sent = set(EVENT_ADAPTER.json_schema()["discriminator"]["mapping"])
    assert set(HANDLERS) | {"thinking_delta"} == sent


def test_unknown_events_are_shown_not_dropped() -> None:
    view = TraceView()
    assert view.apply({"type": "brand_new", "seq": 1, "run_id": "r"})
    assert isinstance(view.steps[0], Notice) and "brand_new" in view.steps[0].message


def test_figures_decode_and_odd_ones_say_so() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    images = [
        {"mime": "image/png", "data": png, "width": 320, "height": 240},
        {"mime": "image/svg+xml", "data": png},
        {"mime": "image/png", "data": "%%"},
    ]
    view = TraceView()
    view.apply({"type": "execution", "seq": 1, "index": 1, "status": "ok", "images": images})
    cell = view.steps[-1]
    assert isinstance(cell, Cell) and cell.output is not None
    assert [(f.mime, f.data, f.width) for f in cell.output.figures] == [
        ("image/png", b"\x89PNG fake", 320)
    ]
    notes = [s.message for s in view.steps if isinstance(s, Notice)]
    assert notes == ["a figure (image/svg+xml) not shown", "a figure (image/png) not shown"]


def test_kernel_and_context_events_are_told() -> None:
    view = view_of(started(), KernelRestored(cells=3), KernelLost(reason="replay failed"),
                   ContextTrimmed(dropped_turns=2))  # fmt: skip
    assert [(s.kind, s.message) for s in view.steps] == [  # type: ignore[union-attr]
        ("info", "The kernel was rebuilt by replaying the 3 earlier cell(s)."),
        ("warning", "The kernel was lost (replay failed): earlier variables are gone."),
        ("info", "2 earlier turn(s) did not fit the context and were left out."),
    ]


def test_the_thinking_folds_apart_from_the_answer() -> None:
    view = view_of(
        started(),
        *deltas("<think>\nCompute. ```python\nprint(1)\n```"),
        Code(index=1, code="print(1)"),
        *deltas("Done.</think>"),
        *deltas("\n\nIt is \\boxed{1}.", "answer"),
        KernelLost(reason="replay failed"),
    )
    assert [type(s).__name__ for s in view.reasoning] == ["Text", "Cell", "Text"]
    assert [type(s).__name__ for s in view.reply] == ["Text", "Notice"]  # never folded away
    assert view.reasoning_label == "Thinking · 1 code cell"
    assert view_of(started(), *deltas("Plain.", "answer")).reasoning == []  # thinking off


def test_a_conversation_lists_its_turns_in_order() -> None:
    record = {"id": "t1", "title": "x", "created_at": 0, "updated_at": 0, "turns": [
        {"index": 2, "run_id": "r2", "question": "b", "answer": None, "status": "running",
         "thinking": None},
        {"index": 1, "run_id": "r1", "question": "a", "answer": "1", "status": "ok",
         "thinking": True},
    ]}  # fmt: skip
    talk = Conversation.from_record(record)
    assert talk.id == "t1" and [(t.index, t.run_id) for t in talk.turns] == [(1, "r1"), (2, "r2")]


def test_thread_label_is_short_and_one_line() -> None:
    label = thread_label({"updated_at": 0, "title": "a\nlong " * 40, "turns": 3})
    assert "\n" not in label and len(label) < 70 and label.endswith("… (3)")
    assert "untitled (0)" in thread_label({"id": "t", "title": None, "updated_at": 0, "turns": 0})
