"""The startbox chat page, run by `startbox ui` (`streamlit run ui/app.py`).

The run on screen lives in the URL (`?run=<id>`), so a reload or a shared link reopens it;
`?q=<question>` asks a question on load (the link then becomes `?run=<id>`).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from ui import render
from ui.client import ApiClient, ApiError
from ui.settings import UiSettings
from ui.view import STATUS_ICONS, TraceView, math_markdown, run_label

REDRAW_EVERY = 0.25  # seconds between redraws while only tokens arrive


def sidebar(api: ApiClient, settings: UiSettings) -> dict[str, Any]:
    """Run settings (empty means the server's default) and the past runs; returns the options."""
    bar = st.sidebar
    bar.title("startbox")
    try:
        models, kinds = api.models(), api.kinds()
    except ApiError as exc:
        bar.error(str(exc))
        models, kinds = [], {}
    bar.selectbox("Model", models or ["(API unreachable)"], help="The model the API serves.")
    options = {
        "thinking_budget": bar.number_input(
            "Thinking budget (tokens)", 0, value=None, step=256, placeholder="server default"
        ),
        "max_tool_calls": bar.number_input(
            "Max tool calls", 0, value=None, placeholder="server default"
        ),
        "hint_rounds": bar.number_input("Hint rounds", 0, value=None, placeholder="server default"),
        "kind": bar.selectbox(
            "Kind",
            list(kinds) or ["math"],
            help="; ".join(f"{name}: {summary}" for name, summary in kinds.items()),
        ),
    }
    if bar.button("New question", icon=":material/add:"):
        st.query_params.clear()
        st.rerun()
    bar.subheader("Past runs")
    try:
        runs = api.runs(settings.recent_runs)
    except ApiError:
        runs = []  # the model list above already said why
    for past in runs:
        icon = STATUS_ICONS.get(past.get("status", ""))
        if bar.button(run_label(past), key=f"run-{past['id']}", type="tertiary", icon=icon):
            st.query_params.clear()
            st.query_params["run"] = past["id"]
            st.rerun()
    if not runs:
        bar.caption("none yet")
    return options


def follow(api: ApiClient, run_id: str, settings: UiSettings) -> None:
    """Show one run; while it runs, stream its events and redraw, then refresh the page."""
    try:
        view = TraceView.from_record(api.run(run_id))
    except ApiError as exc:
        st.error(f"Cannot open run {run_id}: {exc}")
        return
    with st.chat_message("user"):
        st.markdown(math_markdown(view.question))
    cancel = st.empty()
    with st.chat_message("assistant"):
        body = st.empty()
    with body.container():
        render.trace(view)
    if not view.running:
        return
    if cancel.button("Stop this run", icon=":material/stop_circle:", key=f"cancel-{run_id}"):
        try:
            api.cancel(run_id)
        except ApiError as exc:
            st.error(f"Cannot cancel: {exc}")
    drawn = time.monotonic()
    try:
        for event in api.events(run_id, after=view.last_seq, deadline=settings.follow_timeout):
            if view.apply(event) or time.monotonic() - drawn > REDRAW_EVERY:
                with body.container():
                    render.trace(view)
                drawn = time.monotonic()
    except ApiError as exc:
        st.error(str(exc))
        return
    cancel.empty()
    st.rerun()  # the finished run now reads as such everywhere, the past runs list included


def main() -> None:
    st.set_page_config(page_title="startbox", page_icon=":material/psychology:", layout="wide")
    settings = UiSettings()
    with ApiClient(settings.api_url, settings.api_key, settings.timeout) as api:
        options = sidebar(api, settings)
        question = st.chat_input("Ask a question; the model may run Python to answer it")
        shared = st.query_params.get("q")
        if question or shared:
            st.query_params.clear()
            try:
                st.query_params["run"] = api.start_run(question or shared, **options)
            except ApiError as exc:
                st.error(f"Cannot start the run: {exc}")
                st.stop()
        run_id = st.query_params.get("run")
        if run_id:
            follow(api, run_id, settings)
        else:
            st.markdown(
                "Ask a question below. The model thinks, writes Python that runs in a sandbox, "
                "reads the output and thinks on; the whole trace shows here as it happens."
            )


main()
