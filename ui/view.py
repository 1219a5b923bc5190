"""The page's model: trace events (JSON objects from the API) folded into what the page shows.

It imports no Streamlit, so every rule of the page (merging deltas, pairing code with its
output, the budget meter, why a run failed) is unit-testable;
`ui/render.py` only draws a `TraceView`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

Event = dict[str, Any]
TERMINAL = ("ok", "error", "cancelled", "interrupted")
FIGURE_TYPES = ("image/png", "image/jpeg")  # raster only: an SVG could reference other hosts
CODE_FENCE = "```python"
THINK_MARKERS = ("<think>", "</think>")  # the families startbox profiles use (Qwen3, QwQ, R1)


@dataclass
class Text:
    """Consecutive thinking_delta events of one phase, joined."""

    phase: str
    text: str

    @property
    def shown(self) -> str:
        """The text without think markers, which are syntax, not thought."""
        text = self.text
        for marker in THINK_MARKERS:
            text = text.replace(marker, "")
        return text.strip()


@dataclass
class HintStep:
    text: str
    reason: str

    @property
    def shown(self) -> str:
        """The hint without the code fence it opens (the code cell below shows the code)."""
        return self.text.strip().removesuffix(CODE_FENCE).strip()


@dataclass
class Figure:
    """An image the code made (a matplotlib figure), decoded from the execution event."""

    mime: str
    data: bytes
    width: int | None = None


@dataclass
class Output:
    """An execution result, with its streams kept apart so the page can set them apart."""

    status: str
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    duration_ms: float = 0.0
    truncated: bool = False
    figures: list[Figure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Cell:
    """A code block the model wrote, and what running it gave (None while it runs)."""

    index: int
    code: str
    output: Output | None = None


@dataclass
class Notice:
    """Something the reader must not miss: a spent budget, an error, an unknown event."""

    kind: str  # error | warning | info
    message: str


Step = Text | HintStep | Cell | Notice


@dataclass
class FinalAnswer:
    text: str
    answer: str | None
    extracted: bool
    stop_cause: str


@dataclass
class Meter:
    """Tokens used against a budget; `exact` once run_finished brought the real counts."""

    phase: str
    used: int
    budget: int
    exact: bool

    @property
    def fraction(self) -> float:
        if self.budget <= 0:
            return 1.0 if self.used else 0.0
        return min(self.used / self.budget, 1.0)

    @property
    def label(self) -> str:
        approx = "" if self.exact else "~"
        return f"{self.phase}: {approx}{self.used} / {self.budget} tokens"


@dataclass
class TraceView:
    run_id: str = ""
    question: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    profile: str = ""
    status: str = "running"
    steps: list[Step] = field(default_factory=list)
    deltas: dict[str, int] = field(default_factory=dict)  # thinking_delta events per phase
    final: FinalAnswer | None = None
    usage: dict[str, int] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    last_seq: int = 0

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TraceView:
        """A run as GET /v1/runs/{id} returns it; its status wins once it is final."""
        view = cls(
            run_id=record.get("id", ""),
            question=record.get("question", ""),
            options=dict(record.get("options") or {}),
        )
        for event in record.get("events") or []:
            view.apply(event)
        if record.get("status") in TERMINAL:
            view.status = record["status"]
        return view

    def apply(self, event: Event) -> bool:
        """Fold one event in. Returns False for a token delta (redraw when convenient), True
        for a step worth drawing at once. Events already seen (by seq) are skipped."""
        seq = int(event.get("seq", 0))
        if seq and seq <= self.last_seq:
            return False
        self.last_seq = max(self.last_seq, seq)
        self.run_id = event.get("run_id") or self.run_id
        kind = str(event.get("type"))
        if kind == "thinking_delta":
            self._delta(event["text"], event.get("phase", "thinking"))
            return False
        handler = HANDLERS.get(kind)
        if handler is None:
            self.steps.append(
                Notice("info", f"unknown event {kind!r}: this UI may be older than the API")
            )
        else:
            handler(self, event)
        return True

    def _started(self, event: Event) -> None:
        self.question = event.get("question", self.question)
        self.options = {**self.options, **(event.get("options") or {})}
        self.model, self.profile = event.get("model", ""), event.get("profile", "")

    def _hint(self, event: Event) -> None:
        self.steps.append(HintStep(event["text"], event.get("reason", "")))

    def _code(self, event: Event) -> None:
        self._cut_code_from_text(event["code"])
        self.steps.append(Cell(int(event["index"]), event["code"]))

    def _budget(self, event: Event) -> None:
        self.steps.append(
            Notice(
                "warning",
                f"Thinking budget spent ({event['used']} of {event['budget']} tokens): "
                "the model was told to answer now.",
            )
        )

    def _answer(self, event: Event) -> None:
        self.final = FinalAnswer(
            event.get("text", ""),
            event.get("answer"),
            bool(event.get("extracted")),
            event.get("stop_cause", ""),
        )

    def _error(self, event: Event) -> None:
        message = f"{event.get('message', '')} (in {event.get('where', '?')})"
        self.errors.append(message)
        self.steps.append(Notice("error", message))

    def _delta(self, text: str, phase: str) -> None:
        self.deltas[phase] = self.deltas.get(phase, 0) + 1
        last = self.steps[-1] if self.steps else None
        if isinstance(last, Text) and last.phase == phase:
            last.text += text
        else:
            self.steps.append(Text(phase, text))

    def _cut_code_from_text(self, code: str | None = None) -> str:
        """The deltas streamed the code block too; the cell shows it, so the text drops it.
        The block opens with a fence in the text, or in the hint just before it (then it is
        found by the `code`'s first line). Returns the code the text held, for an execution
        that came without a code event (a call over the limit is rejected unrun)."""
        last = self.steps[-1] if self.steps else None
        if not isinstance(last, Text):
            return ""
        fence = last.text.rfind(CODE_FENCE)
        if fence >= 0:
            start, body = fence, last.text[fence + len(CODE_FENCE) :]
        elif code is not None and code.strip():
            start = last.text.find(code.strip().split("\n")[0])
            body = last.text[start:]
        else:
            start = -1
        if start < 0:
            return ""
        last.text = last.text[:start]
        if not last.shown.strip():
            self.steps.pop()
        return body.strip("\n").removesuffix("```").strip("\n")

    def _execution(self, event: Event) -> None:
        output = Output(
            status=event.get("status", "?"),
            stdout=event.get("stdout") or "",
            stderr=event.get("stderr") or "",
            value=event.get("value"),
            error=event.get("error"),
            duration_ms=float(event.get("duration_ms") or 0.0),
            truncated=bool(event.get("truncated")),
            figures=self._figures(event.get("images") or []),
        )
        index = int(event["index"])
        for step in reversed(self.steps):
            if isinstance(step, Cell) and step.index == index:
                step.output = output
                return
        self.steps.append(Cell(index, self._cut_code_from_text(), output))  # no code event

    def _figures(self, images: list[dict[str, Any]]) -> list[Figure]:
        """The images worth showing; one the page will not show says so rather than vanish."""
        figures = []
        for image in images:
            mime = str(image.get("mime", ""))
            try:
                data = base64.b64decode(str(image.get("data", "")), validate=True)
            except binascii.Error:
                data = b""
            if mime in FIGURE_TYPES and data:
                figures.append(Figure(mime, data, image.get("width")))
            else:
                self.steps.append(Notice("info", f"a figure ({mime or 'no type'}) not shown"))
        return figures

    def _kernel_restored(self, event: Event) -> None:
        cells = int(event.get("cells", 0))
        self.steps.append(
            Notice("info", f"The kernel was rebuilt by replaying the {cells} earlier cell(s).")
        )

    def _kernel_lost(self, event: Event) -> None:
        reason = event.get("reason", "unknown")
        self.steps.append(
            Notice("warning", f"The kernel was lost ({reason}): earlier variables are gone.")
        )

    def _context_trimmed(self, event: Event) -> None:
        dropped = int(event.get("dropped_turns", 0))
        self.steps.append(
            Notice("info", f"{dropped} earlier turn(s) did not fit the context and were left out.")
        )

    def _finished(self, event: Event) -> None:
        self.status = event.get("status", "ok")
        self.usage = dict(event.get("usage") or {})
        self.timings_ms = dict(event.get("timings_ms") or {})
        if self.final is None and event.get("answer") is not None:
            self.final = FinalAnswer("", event["answer"], True, "")

    @property
    def running(self) -> bool:
        return self.status not in TERMINAL

    @property
    def reasoning(self) -> list[Step]:
        """What the collapsible thinking holds: the thought, its hints and code cells."""
        return [step for step in self.steps if not _in_view(step)]

    @property
    def reply(self) -> list[Text | Notice]:
        """What stays in view: the answer's text and every notice (a lost kernel, an error)."""
        return [step for step in self.steps if _in_view(step)]

    @property
    def reasoning_label(self) -> str:
        cells = sum(isinstance(step, Cell) for step in self.steps)
        return "Thinking" + (f" · {cells} code cell{'s' * (cells != 1)}" if cells else "")

    @property
    def kind(self) -> str:
        return str(self.options.get("kind") or "math")

    def meters(self) -> list[Meter]:
        """Thinking and answer tokens against their budgets: ~ counted from the stream while
        it runs (one delta is about one token), exact from run_finished's usage."""
        meters = []
        for phase, budget_key, usage_key in (
            ("thinking", "thinking_budget", "thinking_tokens"),
            ("answer", "answer_budget", "answer_tokens"),
        ):
            budget = self.options.get(budget_key)
            if budget is None:
                continue
            if self.usage is not None and usage_key in self.usage:
                meters.append(Meter(phase, int(self.usage[usage_key]), int(budget), True))
            else:
                meters.append(Meter(phase, self.deltas.get(phase, 0), int(budget), False))
        return meters

    @property
    def failure(self) -> str | None:
        """Why the run did not succeed, in words; None while running or after success."""
        said = "; ".join(self.errors)
        if self.status == "error":
            if not said:
                return "The run failed without an error event; the API log says why."
            return f"The run failed: {said}"
        if self.status == "cancelled":
            return "The run was cancelled before it finished" + (f": {said}" if said else ".")
        return None

    def usage_rows(self) -> list[tuple[str, int]]:
        return [(name.replace("_", " "), int(value)) for name, value in (self.usage or {}).items()]

    def timing_rows(self) -> list[tuple[str, float]]:
        return [(name.replace("_", " "), float(ms)) for name, ms in self.timings_ms.items()]


def _in_view(step: Step) -> TypeGuard[Text | Notice]:
    return isinstance(step, Notice) or (isinstance(step, Text) and step.phase == "answer")


# every event type but thinking_delta (folded in apart, as it needs no redraw), the threads
# contract's included; the test suite checks that the API sends no other, since the UI imports
# nothing of the API
HANDLERS: dict[str, Callable[[TraceView, Event], None]] = {
    "run_started": TraceView._started,
    "hint": TraceView._hint,
    "code": TraceView._code,
    "execution": TraceView._execution,
    "budget_exhausted": TraceView._budget,
    "answer": TraceView._answer,
    "run_finished": TraceView._finished,
    "error": TraceView._error,
    "kernel_restored": TraceView._kernel_restored,
    "kernel_lost": TraceView._kernel_lost,
    "context_trimmed": TraceView._context_trimmed,
}


@dataclass
class Turn:
    """One question and answer of a conversation, as GET /v1/threads/{id} lists it."""

    index: int
    run_id: str


@dataclass
class Conversation:
    id: str
    turns: list[Turn]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Conversation:
        turns = [Turn(int(t["index"]), str(t["run_id"])) for t in record.get("turns") or []]
        return cls(str(record["id"]), sorted(turns, key=lambda turn: turn.index))


def thread_label(thread: dict[str, Any], width: int = 42) -> str:
    """A conversation as one sidebar line: when it last moved, its title, how many turns."""
    when = dt.datetime.fromtimestamp(float(thread.get("updated_at") or 0)).strftime("%m-%d %H:%M")
    title = " ".join(str(thread.get("title") or "untitled").split())
    if len(title) > width:
        title = title[: width - 1] + "…"
    turns = int(thread.get("turns") or 0)
    return f"{when} · {title} ({turns})"
