"""Drawing a `TraceView` with Streamlit: no decisions here, `ui/view.py` makes them.

Everything the model shaped is drawn by `st.text`, `st.code` or through `ui.markdown`, never as
raw markdown (see there why)."""

from __future__ import annotations

import streamlit as st

from ui.markdown import boxed, escape
from ui.view import Cell, HintStep, Meter, Notice, Output, Text, TraceView

OUTPUT_ICONS = {"ok": ":material/check_circle:", "timeout": ":material/timer_off:"}


def trace(view: TraceView) -> None:
    """The whole trace of one run into the current container: the thinking (code cells, hints
    and all) folds away once the run is over, the answer stays in view."""
    meters(view.meters())
    if view.reasoning:
        with st.expander(view.reasoning_label, expanded=view.running, icon=":material/psychology:"):
            for step in view.reasoning:
                if isinstance(step, Text):
                    text(step)
                elif isinstance(step, HintStep):
                    reason = escape(step.reason or "inserted")
                    st.info(
                        f"**Hint** ({reason}): {escape(step.shown)}", icon=":material/lightbulb:"
                    )
                elif isinstance(step, Cell):
                    cell(step, view.running)
    for shown in view.reply:
        if isinstance(shown, Text):
            text(shown)
        else:
            notice(shown)
    if view.running:
        st.caption(":material/hourglass_top: running…")
    answer(view)
    if view.failure:
        (st.warning if view.status == "cancelled" else st.error)(view.failure)
    usage(view)


def meters(items: list[Meter]) -> None:
    for meter in items:
        st.progress(meter.fraction, text=meter.label)


def text(step: Text) -> None:
    if step.shown.strip():
        st.text(step.shown)


def cell(step: Cell, running: bool) -> None:
    st.caption(f":material/code: code cell {step.index}")
    st.code(step.code or "# (the code event was not received)", language="python")
    if step.output is None:
        if running:
            st.caption(":material/hourglass_top: running in the sandbox…")
        else:
            st.caption(":material/block: no result: the run ended before this cell did")
        return
    output(step.output)


def output(result: Output) -> None:
    icon = OUTPUT_ICONS.get(result.status, ":material/error:")
    cut = " · output truncated" if result.truncated else ""
    st.caption(f"{icon} {result.status} · {result.duration_ms:.0f} ms{cut}")
    for name, stream in (("stdout", result.stdout), ("value", result.value),
                         ("stderr", result.stderr), ("traceback", result.error)):  # fmt: skip
        if stream:
            st.caption(name)
            st.code(stream, language="text")
    for figure in result.figures:
        st.image(figure.data, width=figure.width or "content")
    if not result.ok and not result.error:
        st.error(f"execution {result.status}", icon=":material/bug_report:")


def notice(step: Notice) -> None:
    message = escape(step.message)
    if step.kind == "error":
        st.error(message, icon=":material/error:")
    elif step.kind == "warning":
        st.warning(message, icon=":material/warning:")
    else:
        st.info(message)


def answer(view: TraceView) -> None:
    final = view.final
    if final is None:
        return
    st.markdown("#### Answer")
    if final.answer is None or not final.extracted:
        cause = f" (stop cause: {escape(final.stop_cause)})" if final.stop_cause else ""
        st.warning(f"No \\\\boxed{{}} answer or final program was found{cause}.")
        return
    tex = None if view.kind == "code" else boxed(final.answer)
    if tex is None:
        st.code(final.answer, language="python" if view.kind == "code" else "text")
    else:
        st.latex(tex)


def usage(view: TraceView) -> None:
    if view.usage is None:
        return
    rows = view.usage_rows()
    for column, (name, value) in zip(st.columns(len(rows) or 1), rows, strict=False):
        column.metric(name, value)
    if view.timing_rows():
        st.caption(
            "timings: " + " · ".join(f"{name} {ms / 1000:.2f} s" for name, ms in view.timing_rows())
        )
