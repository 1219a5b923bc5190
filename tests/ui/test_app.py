"""The page (ui/app.py) under Streamlit's AppTest, against a real `startbox api`."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from model_host.scripted import Reply
from tests.ui.conftest import CODE_RUN, Stack, free_port

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


def test_asking_a_question_shows_the_whole_trace(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    app = page()
    assert any("scripted" in option for option in app.sidebar.selectbox[0].options)
    app.sidebar.number_input[1].set_value(3)  # max tool calls
    app.chat_input[0].set_value("What is 6 times 7?").run()
    assert not app.exception, app.exception
    run_id = app.query_params["run"]
    assert [m.name for m in app.chat_message] == ["user", "assistant"]
    assert "What is 6 times 7?" in texts(app)
    assert "Let me compute it in Python." in texts(app)
    assert [c.value for c in app.code][:2] == ["x = 6 * 7\nprint(x)", "42"]
    assert "stdout" in texts(app)
    assert latex(app) == ["\\boxed{42}"]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["tool calls"] == "1" and metrics["model calls"] == "3"
    assert "timings:" in texts(app)
    assert app.get("progress")  # the budget meters
    with ui_env.client() as client:
        record = client.get(f"/v1/runs/{run_id}").json()
    assert record["options"]["max_tool_calls"] == 3 and record["status"] == "ok"
    assert f"cancel-{run_id}" not in {b.key for b in app.button}  # only while it runs


def test_a_past_run_reopens_from_the_sidebar_and_the_link(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    with ui_env.client() as client:
        run_id = client.post("/v1/runs", json={"question": "Reopen me: 6 * 7?"}).json()["id"]
        events = client.get(f"/v1/runs/{run_id}/events", timeout=60).text
    assert "run_finished" in events
    app = page()
    app.button(key=f"run-{run_id}").click().run()
    assert app.query_params["run"] == run_id
    assert "Reopen me" in texts(app) and latex(app) == ["\\boxed{42}"]
    linked = page(run=run_id)
    assert "Reopen me" in texts(linked) and "42" in [c.value for c in linked.code]


def test_a_shared_link_asks_its_question_once_confirmed(ui_env: Stack) -> None:
    ui_env.load(*CODE_RUN)
    with ui_env.client() as client:
        before = len(client.get("/v1/runs").json()["runs"])
    app = page(q="Asked by link: 6 * 7?")
    assert "run" not in app.query_params and "A link brought this question" in texts(app)
    with ui_env.client() as client:
        assert len(client.get("/v1/runs").json()["runs"]) == before  # nothing spent unasked
    app.button(key="ask-shared").click().run()
    assert "q" not in app.query_params and app.query_params["run"]
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
    assert "Cannot start the run" in "\n".join(e.value for e in app.error)
