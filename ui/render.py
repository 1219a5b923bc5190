"""Drawing a `TraceView` with Streamlit: no decisions here, `ui/view.py` makes them."""

from __future__ import annotations

import streamlit as st

from ui.view import Cell, HintStep, Meter, Notice, Output, Text, TraceView, math_markdown

OUTPUT_ICONS = {"ok": ":material/check_circle:", "timeout": ":material/timer_off:"}


def trace(view: TraceView) -> None:
    """The whole trace of one run, top to bottom, into the current container."""
    meters(view.meters())
    for step in view.steps:
        if isinstance(step, Text):
            text(step)
        elif isinstance(step, HintStep):
            st.info(
                f"**Hint** ({step.reason or 'inserted'}): {step.shown}", icon=":material/lightbulb:"
            )
        elif isinstance(step, Cell):
            cell(step, view.running)
        elif isinstance(step, Notice):
            notice(step)
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
    if not step.shown.strip():
        return
    if step.phase == "answer":
        st.markdown(math_markdown(step.shown))
    else:
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
    if result.stdout:
        st.caption("stdout")
        st.code(result.stdout, language="text")
    if result.value is not None:
        st.caption("value")
        st.code(result.value, language="text")
    if result.stderr:
        st.caption("stderr")
        st.code(result.stderr, language="text")
    if result.error:
        st.error(f"```\n{result.error}\n```", icon=":material/bug_report:")
    elif not result.ok:
        st.error(f"execution {result.status}", icon=":material/bug_report:")


def notice(step: Notice) -> None:
    if step.kind == "error":
        st.error(step.message, icon=":material/error:")
    elif step.kind == "budget":
        st.warning(step.message, icon=":material/hourglass_bottom:")
    else:
        st.info(step.message)


def answer(view: TraceView) -> None:
    final = view.final
    if final is None:
        return
    st.markdown("#### Answer")
    if final.answer is None or not final.extracted:
        cause = f" (stop cause: {final.stop_cause})" if final.stop_cause else ""
        st.warning(f"No \\\\boxed{{}} answer or final program was found{cause}.")
        return
    if view.kind == "code":
        st.code(final.answer, language="python")
    else:
        st.latex(f"\\boxed{{{final.answer}}}")


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
