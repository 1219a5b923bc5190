"""Human-readable rendering of sandbox results (shared by the CLI and the demo)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from sandbox.result import ExecResult, Status

STATUS_STYLE = {Status.ok: "green", Status.error: "red", Status.rejected: "yellow"}


def render_result(console: Console, result: ExecResult) -> None:
    parts: list[Text] = []
    if result.stdout:
        parts.append(Text(result.stdout.rstrip("\n")))
    if result.stderr:
        parts.append(Text(result.stderr.rstrip("\n"), style="yellow"))
    if result.value is not None:
        parts.append(Text.assemble(("→ ", "bold cyan"), result.value))
    if result.error:
        parts.append(Text(result.error, style="red"))
    style = STATUS_STYLE.get(result.status, "bold red")
    title = f"[{style}]{result.status.value}[/] · {result.duration_ms:.1f} ms"
    if result.truncated:
        title += " · [yellow]truncated[/]"
    console.print(
        Panel(
            Group(*parts) if parts else Text("(no output)", style="dim"),
            title=title,
            title_align="left",
            border_style=style,
        )
    )
