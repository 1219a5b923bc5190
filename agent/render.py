"""A live, readable trace in the terminal: thinking dimmed, code highlighted, outputs boxed,
hints marked, a budget meter, and the final answer."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from agent.events import (
    Answer,
    BudgetExhausted,
    Code,
    Error,
    Event,
    Execution,
    Hint,
    RunFinished,
    RunStarted,
    ThinkingDelta,
)

CODE_OPEN = "```python\n"


class TraceRenderer:
    """Feeds on events. Code the model writes streams in as thinking text; it is held back
    and shown once, highlighted, when the `code` event arrives."""

    def __init__(self, console: Console, thinking_budget: int, answer_budget: int) -> None:
        self.console = console
        self.budgets = {"thinking": thinking_budget, "answer": answer_budget}
        self.tokens = {"thinking": 0, "answer": 0}
        self.phase = "thinking"
        self.pending = ""
        self.in_code = False
        self.mid_line = False  # thinking text was printed without a final newline
        self.live = Live(self._meter(), console=console, transient=True, auto_refresh=False)

    def __enter__(self) -> TraceRenderer:
        self.live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._flush(final=True)
        self.live.__exit__(None, None, None)

    def feed(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.console.rule(f"[bold]{event.question[:100]}")
                self.console.print(f"[dim]model {event.model} · profile {event.profile}")
            case ThinkingDelta():
                if event.phase != self.phase:
                    self._flush(final=True)
                    self.phase = event.phase
                    self.console.rule("[bold]answer", style="green")
                self.tokens[event.phase] += 1
                self.pending += event.text
                self._flush()
            case Hint():
                self._flush(final=True)
                self.console.print(Text(f"💡 hint: {event.text.strip()}", style="bold magenta"))
                self.in_code = event.text.endswith(CODE_OPEN)
            case Code():
                self.pending, self.in_code = "", False
                self._flush(final=True)
                self.console.print(
                    Panel(
                        Syntax(event.code, "python", theme="monokai", word_wrap=True),
                        title=f"code #{event.index}",
                        title_align="left",
                        border_style="cyan",
                    )
                )
            case Execution():
                self._flush(final=True)
                style = "green" if event.status == "ok" else "red"
                title = f"output #{event.index} · {event.status} · {event.duration_ms:.0f} ms"
                self.console.print(
                    Panel(
                        Text(event.output),
                        title=title,
                        title_align="left",
                        border_style=style,
                    )
                )
            case BudgetExhausted():
                self._flush(final=True)
                self.console.print(
                    f"[yellow]⏳ thinking budget spent ({event.used}/{event.budget} tokens): "
                    "answering now"
                )
            case Answer():
                self._flush(final=True)
                label = "answer" if event.extracted else "answer (no \\boxed{}; last line)"
                self.console.print(
                    Panel(
                        Text(event.answer or "(none)", style="bold"),
                        title=label,
                        title_align="left",
                        border_style="green",
                    )
                )
            case Error():
                self._flush(final=True)
                self.console.print(f"[bold red]error[/] ({event.where}): {event.message}")
            case RunFinished():
                self._flush(final=True)
                self.console.print(usage_table(event))
        self.live.update(self._meter(), refresh=True)

    def _flush(self, final: bool = False) -> None:
        """Print settled thinking text; stop at a code fence (its code is shown highlighted)."""
        while self.pending:
            if self.in_code:
                if not final:
                    return
                self.pending = ""
            start = self.pending.find(CODE_OPEN)
            if start >= 0:
                self._print(self.pending[:start])
                self.pending, self.in_code = self.pending[start + len(CODE_OPEN) :], True
                continue
            keep = 0 if final else _partial_fence(self.pending)
            self._print(self.pending[: len(self.pending) - keep])
            self.pending = self.pending[len(self.pending) - keep :]
            break
        if final and self.mid_line:  # panels start on a line of their own
            self.console.print()
            self.mid_line = False

    def _print(self, text: str) -> None:
        if text:
            style = "dim" if self.phase == "thinking" else ""
            self.console.print(Text(text, style=style), end="")
            self.mid_line = not text.endswith("\n")

    def _meter(self) -> Text:
        used, budget = self.tokens[self.phase], self.budgets[self.phase]
        filled = min(20, int(20 * used / budget)) if budget else 20
        bar = "█" * filled + "░" * (20 - filled)
        return Text(f"{self.phase} {bar} ~{used}/{budget} tokens", style="cyan")


def _partial_fence(text: str) -> int:
    """How many trailing characters could be the start of a code fence."""
    for size in range(min(len(CODE_OPEN) - 1, len(text)), 0, -1):
        if CODE_OPEN.startswith(text[-size:]):
            return size
    return 0


def usage_table(event: RunFinished) -> Group:
    usage = event.usage
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("status", event.status)
    table.add_row("tokens", f"{usage.thinking_tokens} thinking · {usage.answer_tokens} answer")
    table.add_row("model calls", str(usage.model_calls))
    table.add_row("tool calls", f"{usage.tool_calls} · hints {usage.hints}")
    timings = " · ".join(f"{k} {_duration(v)}" for k, v in sorted(event.timings_ms.items()))
    table.add_row("timings", timings)
    return Group(Text(""), table)


def _duration(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"
