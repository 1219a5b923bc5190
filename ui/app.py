"""The startbox chat page, run by `startbox ui` (`streamlit run ui/app.py`).

What is on screen lives in the URL, so a reload or a shared link reopens it: `?thread=<id>` a
conversation, `?run=<id>` a single run (one made over the API, say), and the sidebar's settings
as their own parameters. `?q=<question>` offers a question, asked in a new conversation once the
viewer confirms it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import streamlit as st

from ui import render
from ui.client import ApiClient, ApiError
from ui.markdown import escape
from ui.settings import UiSettings
from ui.view import Conversation, TraceView, thread_label

REDRAW_EVERY = 0.25  # seconds between redraws while only tokens arrive
PLACES = ("thread", "run", "q")  # the query parameters that say what is on screen
THINKING = {"on": True, "off": False}
SAMPLING = {  # a run's `sampling` knobs and their steps (an int step: an int field); the API
    # checks the bounds
    "temperature": ("Temperature", 0.1),
    "top_p": ("Top-p", 0.05),
    "top_k": ("Top-k (-1: off)", 1),
    "min_p": ("Min-p", 0.01),
    "presence_penalty": ("Presence penalty", 0.1),
    "repetition_penalty": ("Repetition penalty", 0.05),
}


def go(**place: str) -> None:
    """Show another place (the settings in the URL stay) and redraw."""
    for name in PLACES:
        if name in st.query_params:
            del st.query_params[name]
    st.query_params.update(place)
    st.rerun()


def sidebar(api: ApiClient, settings: UiSettings) -> dict[str, Any]:
    """Turn settings (empty: the server's default; each kept in the URL) and the conversations;
    returns the options of the next turn."""
    bar = st.sidebar
    bar.title("startbox")
    try:
        models, kinds = api.models(), api.kinds()
    except ApiError as exc:
        bar.error(str(exc))
        models, kinds = [], {}
    bar.selectbox("Model", models or ["(API unreachable)"], help="The model the API serves.")
    bound: dict[str, Any] = {"bind": "query-params"}
    thinking = bar.segmented_control(
        "Thinking", list(THINKING), key="thinking", help="Empty: the model's default.", **bound
    )
    options = {
        "thinking": THINKING.get(thinking or ""),
        "thinking_budget": bar.number_input(
            "Thinking budget (tokens)", 0, value=None, step=256, placeholder="server default",
            key="thinking_budget", **bound,
        ),
        "answer_budget": bar.number_input(
            "Answer budget (tokens)", 1, value=None, step=128, placeholder="server default",
            key="answer_budget", **bound,
        ),
        "max_tool_calls": bar.number_input(
            "Max tool calls", 0, value=None, placeholder="server default", key="max_tool_calls",
            **bound,
        ),
        "hint_rounds": bar.number_input(
            "Hint rounds", 0, value=None, placeholder="server default", key="hint_rounds", **bound
        ),
        "kind": bar.selectbox(
            "Kind", list(kinds) or ["math"], key="kind", **bound,
            help="; ".join(f"{name}: {summary}" for name, summary in kinds.items()),
        ),
    }  # fmt: skip
    knobs = bar.expander("Sampling", icon=":material/tune:")
    sampling = {
        name: knobs.number_input(
            label, value=None, step=step, placeholder="server default", key=name, **bound
        )
        for name, (label, step) in SAMPLING.items()
    }
    if chosen := {name: value for name, value in sampling.items() if value is not None}:
        options["sampling"] = chosen
    if bar.button("New conversation", icon=":material/add:"):
        go()
    bar.subheader("Conversations")
    try:
        threads = api.threads(settings.recent_threads)
    except ApiError as exc:
        threads = []
        if exc.status == 404:
            bar.error("this API has no conversations (/v1/threads): upgrade `startbox api`")
    for thread in threads:
        label = escape(thread_label(thread))
        if bar.button(label, key=f"thread-{thread['id']}", type="tertiary"):
            go(thread=thread["id"])
    if not threads:
        bar.caption("none yet")
    return {name: value for name, value in options.items() if value is not None}


def load(api: ApiClient, run_id: str) -> TraceView:
    """A run's view; finished ones are kept for the session (they no longer change, and a
    conversation's page redraws every turn on each interaction)."""
    finished: dict[str, TraceView] = st.session_state.setdefault("finished", {})
    if run_id in finished:
        return finished[run_id]
    view = TraceView.from_record(api.run(run_id))
    if not view.running:
        finished[run_id] = view
    return view


def show(
    api: ApiClient, view: TraceView, settings: UiSettings, turn: tuple[str, int] | None = None
) -> None:
    """One run, or the turn (thread id, index) of a conversation, which a finished turn offers
    to fork from; while it runs, stream its events and redraw, then redraw the page."""
    with st.chat_message("user"):
        st.text(view.question)
    cancel = st.empty()
    with st.chat_message("assistant"):
        body = st.empty()
    with body.container():
        render.trace(view)
    if not view.running:
        if turn and st.button(
            "Fork from here", key=f"fork-{turn[0]}-{turn[1]}", type="tertiary",
            icon=":material/fork_right:", help="A new conversation of the turns up to this one.",
        ):  # fmt: skip
            try:
                go(thread=api.fork(*turn))
            except ApiError as exc:
                st.error(f"Cannot fork: {exc}")
        return
    if cancel.button("Stop this run", icon=":material/stop_circle:", key=f"cancel-{view.run_id}"):
        try:
            api.cancel(view.run_id)
        except ApiError as exc:
            st.error(f"Cannot cancel: {exc}")
    drawn = time.monotonic()
    try:
        for event in api.events(view.run_id, after=view.last_seq, deadline=settings.follow_timeout):
            if view.apply(event) or time.monotonic() - drawn > REDRAW_EVERY:
                with body.container():
                    render.trace(view)
                drawn = time.monotonic()
    except ApiError as exc:
        st.error(str(exc))
        return
    st.session_state.setdefault("finished", {})[view.run_id] = view  # the stream has it all
    cancel.empty()
    st.rerun()  # the finished turn now reads as such everywhere, the sidebar included


def delete(api: ApiClient, thread_id: str) -> None:
    """Delete the conversation, once confirmed in a popover (a stray click deletes nothing)."""
    with st.popover("Delete conversation", icon=":material/delete:"):
        st.caption("It leaves the list and its kernel is released; links to its runs still work.")
        if st.button("Delete", type="primary", key=f"delete-{thread_id}"):
            try:
                api.delete_thread(thread_id)
            except ApiError as exc:
                st.error(f"Cannot delete: {exc}")
                return
            go()


def conversation(api: ApiClient, thread_id: str, settings: UiSettings) -> None:
    try:
        talk = Conversation.from_record(api.thread(thread_id))
        delete(api, talk.id)
        for turn in talk.turns:
            show(api, load(api, turn.run_id), settings, (talk.id, turn.index))
    except ApiError as exc:
        st.error(f"Cannot open conversation {thread_id}: {exc}")


def confirm(shared: str) -> str:
    """A `?q=` link's question, asked only once the viewer says so: any page could link or
    frame this one, and an unasked run would spend the UI's key."""
    with st.chat_message("user"):
        st.text(shared)
    st.info("A link brought this question. Ask it?", icon=":material/link:")
    ask, dismiss = st.columns([1, 8])
    if ask.button("Ask it", type="primary", key="ask-shared"):
        return shared
    if dismiss.button("Dismiss", key="dismiss-shared"):
        go()
    st.stop()


def main() -> None:
    st.set_page_config(page_title="startbox", page_icon=":material/psychology:", layout="wide")
    settings = UiSettings()
    with ApiClient(settings.api_url, settings.api_key, settings.timeout) as api:
        options = sidebar(api, settings)
        question = st.chat_input("Ask a question, or a follow-up; the model may run Python")
        thread_id = st.query_params.get("thread")
        if question is None and (shared := st.query_params.get("q")) is not None:
            question, thread_id = confirm(shared), None  # a link opens a new conversation
        if question:
            created = None
            try:
                if not thread_id:
                    thread_id = created = api.create_thread(" ".join(question.split())[:80])
                api.ask(thread_id, question, options)
            except ApiError as exc:
                if created:  # refused (a setting out of bounds, say): no empty conversation
                    with contextlib.suppress(ApiError):
                        api.delete_thread(created)
                st.error(f"Cannot ask: {exc}")
                st.stop()
            go(thread=thread_id)
        if thread_id:
            conversation(api, thread_id, settings)
        elif run_id := st.query_params.get("run"):
            try:
                show(api, load(api, run_id), settings)
            except ApiError as exc:
                st.error(f"Cannot open run {run_id}: {exc}")
        else:
            st.markdown(
                "Ask a question below, then follow-ups: the conversation keeps its Python "
                "kernel. The model thinks, writes Python that runs in a sandbox, reads the "
                "output and thinks on; the whole trace shows here as it happens."
            )


main()
