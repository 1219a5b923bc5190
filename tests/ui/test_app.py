"""The page (ui/app.py) under Streamlit's AppTest, against a real `startbox api`."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from model_host.scripted import Reply
from tests.ui.conftest import CODE_RUN, FOLLOW_UP, OTHER_KEY, Stack, free_port

APP = str(Path(ui.__file__).with_name("app.py"))
SLOW_RUN = ["<think>\nLet me wait.\n```python\nimport time\ntime.sleep(30)\n```\n"]


def page(**query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=90)
    app.query_params.update(query)
    return app.run()


def texts(app: AppTest) -> str:
    """Everything the page says in words, for loose assertions."""
    parts = [*app.markdown, *app.caption, *app.text, *app.error, *app.warning, *app.info]
    return "\n".join(str(part.value) for part in parts)


def latex(app: AppTest) -> list[str]:
    return [element.value.strip("$\n") for element in app.latex]


def test_a_conversation_keeps_its_kernel_across_turns_and_forks(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    app = page()
    assert any("scripted" in option for option in app.sidebar.selectbox[0].options)
    app.number_input(key="max_tool_calls").set_value(3)
    app.chat_input[0].set_value("What is 6 times 7?").run()
    assert not app.exception, app.exception
    thread_id = app.query_params["thread"]
    assert [m.name for m in app.chat_message] == ["user", "assistant"]
    assert "What is 6 times 7?" in texts(app)
    assert "Let me compute it in Python." in texts(app)
    assert [c.value for c in app.code][:2] == ["x = 6 * 7\nprint(x)", "42"]
    assert latex(app) == ["\\boxed{42}"]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["tool calls"] == "1" and metrics["model calls"] == "3"
    assert "timings:" in texts(app) and app.get("progress")  # the budget meters
    assert [e.label for e in app.main.expander] == ["Thinking · 1 code cell"]

    ui_env.load(*FOLLOW_UP)
    app.segmented_control(key="thinking").set_value("on")
    app.chat_input[0].set_value("And plus one?").run()
    assert not app.exception, app.exception
    assert app.query_params["thread"] == thread_id
    assert [m.name for m in app.chat_message] == ["user", "assistant"] * 2
    assert "43" in [c.value for c in app.code]  # x from the first turn's kernel
    assert latex(app) == ["\\boxed{42}", "\\boxed{43}"]
    with ui_env.client() as client:
        turns = client.get(f"/v1/threads/{thread_id}").json()["turns"]
        options = client.get(f"/v1/runs/{turns[1]['run_id']}").json()["options"]
    assert [(t["question"], t["status"], t["thinking"]) for t in turns] == [
        ("What is 6 times 7?", "ok", None), ("And plus one?", "ok", True)
    ]  # fmt: skip
    assert options["max_tool_calls"] == 3  # the sidebar's settings hold for each turn
    assert f"cancel-{turns[1]['run_id']}" not in {b.key for b in app.button}  # only while it runs

    app.button(key=f"fork-{thread_id}-1").click().run()
    forked = app.query_params["thread"]
    assert forked != thread_id and [m.name for m in app.chat_message] == ["user", "assistant"]
    assert app.button(key=f"thread-{forked}") and app.button(key=f"thread-{thread_id}")


def test_settings_come_from_the_link_and_reach_the_turn(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    app = page(thinking="off", answer_budget="64", kind="math", temperature="0.2", top_k="5")
    assert app.segmented_control(key="thinking").value == "off"
    assert app.number_input(key="answer_budget").value == 64
    assert app.number_input(key="temperature").value == 0.2
    app.chat_input[0].set_value("Quietly: 6 * 7?").run()
    assert app.query_params["answer_budget"] == "64" and app.query_params["thinking"] == "off"
    with ui_env.client() as client:
        turn = client.get(f"/v1/threads/{app.query_params['thread']}").json()["turns"][0]
        options = client.get(f"/v1/runs/{turn['run_id']}").json()["options"]
    assert turn["thinking"] is False and options["answer_budget"] == 64
    assert options["sampling"]["temperature"] == 0.2 and options["sampling"]["top_k"] == 5


def test_a_sampling_value_out_of_bounds_is_refused_with_its_name(ui_env: Stack) -> None:
    app = page(temperature="-1")
    app.chat_input[0].set_value("Colder than cold?").run()
    [error] = app.error
    assert "Cannot ask" in error.value and "sampling.temperature" in error.value, error.value
    with ui_env.client() as client:  # the refused question left no empty conversation
        titles = [t["title"] for t in client.get("/v1/threads").json()["threads"]]
    assert "Colder than cold?" not in titles


def test_a_conversation_and_a_run_reopen_from_the_sidebar_and_links(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    with ui_env.client() as client:
        thread_id = client.post("/v1/threads", json={"title": "Reopen me"}).json()["id"]
        asked = client.post(f"/v1/threads/{thread_id}/runs", json={"question": "Reopen: 6 * 7?"})
        run_id = asked.json()["id"]
        assert "run_finished" in client.get(f"/v1/runs/{run_id}/events", timeout=60).text
    app = page()
    app.button(key=f"thread-{thread_id}").click().run()
    assert app.query_params["thread"] == thread_id
    assert "Reopen: 6 * 7?" in texts(app) and latex(app) == ["\\boxed{42}"]
    linked = page(run=run_id)
    assert "Reopen: 6 * 7?" in texts(linked) and "42" in [c.value for c in linked.code]


def test_another_keys_conversation_is_neither_listed_nor_opened(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    with ui_env.client(OTHER_KEY) as other:
        thread_id = other.post("/v1/threads", json={"title": "Not yours"}).json()["id"]
        run_id = other.post(f"/v1/threads/{thread_id}/runs", json={"question": "Secret?"}).json()
        assert "run_finished" in other.get(f"/v1/runs/{run_id['id']}/events", timeout=60).text
    app = page()
    assert f"thread-{thread_id}" not in {b.key for b in app.button}
    assert "Not yours" not in "\n".join(str(b.label) for b in app.button)
    opened = page(thread=thread_id)
    errors = "\n".join(e.value for e in opened.error)
    assert f"Cannot open conversation {thread_id}" in errors and "404" in errors, errors
    assert "Secret?" not in texts(opened)
    linked = page(run=run_id["id"])
    assert "404" in "\n".join(e.value for e in linked.error) and "Secret?" not in texts(linked)


def test_a_shared_link_asks_its_question_once_confirmed(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    with ui_env.client() as client:
        before = len(client.get("/v1/runs").json()["runs"])
    app = page(q="Asked by link: 6 * 7?")
    assert "thread" not in app.query_params and "A link brought this question" in texts(app)
    with ui_env.client() as client:
        assert len(client.get("/v1/runs").json()["runs"]) == before  # nothing spent unasked
    app.button(key="ask-shared").click().run()
    assert "q" not in app.query_params and app.query_params["thread"]
    assert "Asked by link" in texts(app) and latex(app) == ["\\boxed{42}"]


def test_a_failed_run_says_why(ui_env: Stack) -> None:
    ui_env.scripted.replies = [Reply(status=500)]  # the model host fails; retries are off
    app = page()
    app.chat_input[0].set_value("This run fails").run()
    assert not app.exception
    errors = "\n".join(e.value for e in app.error)
    assert "The run failed" in errors and "500" in errors, errors


def test_a_running_run_can_be_cancelled(ui_env: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    ui_env.load(*SLOW_RUN)
    monkeypatch.setenv("STARTBOX_UI_FOLLOW_TIMEOUT", "4")  # the page stops following, and waits
    with ui_env.client() as client:
        run_id = client.post("/v1/runs", json={"question": "A slow one"}).json()["id"]
    app = page(run=run_id)
    assert "stopped following" in "\n".join(e.value for e in app.error)
    assert "time.sleep(30)" in app.code[0].value
    app.button(key=f"cancel-{run_id}").click().run()
    assert not app.exception
    assert "The run was cancelled" in "\n".join(w.value for w in app.warning)
    assert f"cancel-{run_id}" not in {b.key for b in app.button}


def test_an_unreachable_api_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARTBOX_UI_API_URL", f"http://127.0.0.1:{free_port()}")
    app = page()
    assert not app.exception
    errors = "\n".join(e.value for e in app.error)
    assert "cannot reach the startbox API" in errors and "startbox api" in errors
    app.chat_input[0].set_value("anything").run()
    assert "Cannot ask" in "\n".join(e.value for e in app.error)
