"""A real headless Chromium on the real UI and API: type a question, watch the trace, screenshot.

The screenshots land in artifacts/ui/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

from tests.ui.browser import ARTIFACTS, CHAT_INPUT, Browser
from tests.ui.conftest import CODE_RUN, FOLLOW_UP, Stack

SHOWCASE = [  # with one hint round: code with stdout and stderr, a hint, code that fails, answer
    "<think>\nLet me check 6 times 7 in Python.\n```python\nimport sys\nx = 6 * 7\nprint(x)\n"
    "print('checked in the sandbox', file=sys.stderr)\n```\n",
    "The output says 42.</think>",
    "assert x == 7 * 6\nx / 0\n```\n",
    "Dividing by zero fails, as it should; the product stands at 42.</think>",
    "\n\nThe product is $6 \\times 7 = \\boxed{42}$.",
]


def ask_with(browser: Browser, ui_url: str, setting: tuple[str, str, str], question: str) -> None:
    """Open the page, set a sidebar number (label, URL parameter, value), which the URL then
    holds, ask the question and wait for the end of its trace."""
    label, param, value = setting
    browser.goto(ui_url)
    browser.wait_settled(60)
    browser.type_into(f'input[aria-label="{label}"]', value)
    browser.wait_for(f"location.search.includes('{param}={value}')", 30, f"{param} in the URL")
    browser.type_into(CHAT_INPUT, question)
    browser.wait_for_text("timings:", 90)  # drawn from run_finished


def test_a_question_typed_in_the_browser_shows_its_trace(
    stack: Stack, ui_url: str, tmp_path: Path
) -> None:
    stack.load(*SHOWCASE)
    with Browser(tmp_path / "profile", height=2400) as browser:
        question = "What is 6 times 7? Check it with Python."
        ask_with(browser, ui_url, ("Hint rounds", "hint_rounds", "1"), question)
        browser.expand_all()
        browser.wait_settled(30)
        shot = browser.screenshot(ARTIFACTS / "trace.png")
        page = browser.text()
        thread_id = browser.evaluate("new URL(location.href).searchParams.get('thread')")
    expected = ("What is 6 times 7?", "Let me check 6 times 7 in Python.", "checked in the sandbox",
                "Hint", "ZeroDivisionError", "Answer", "thinking:", "tool calls")  # fmt: skip
    for seen in expected:
        assert seen in page, f"{seen!r} not on the page:\n{page}"
    assert shot.stat().st_size > 20_000
    with stack.client() as client:
        turn = client.get(f"/v1/threads/{thread_id}").json()["turns"][0]
        record = client.get(f"/v1/runs/{turn['run_id']}").json()
    assert record["status"] == "ok" and record["options"]["hint_rounds"] == 1


def test_a_run_link_reopens_the_trace(stack: Stack, ui_url: str, tmp_path: Path) -> None:
    stack.load(*SHOWCASE[:2], "\n\n\\boxed{42}")
    with stack.client() as client:
        run_id = client.post("/v1/runs", json={"question": "Linked run: 6 * 7?"}).json()["id"]
        assert "run_finished" in client.get(f"/v1/runs/{run_id}/events", timeout=60).text
    with Browser(tmp_path / "profile") as browser:
        browser.goto(f"{ui_url}/?run={run_id}")
        browser.wait_for_text("Linked run: 6 * 7?", 60)
        browser.wait_for_text("timings:", 30)
        browser.expand_all()
        browser.wait_settled(30)
        browser.screenshot(ARTIFACTS / "reopened.png")
        assert "checked in the sandbox" in browser.text()


def test_the_trace_streams_live_and_the_stop_button_cancels(
    stack: Stack, ui_url: str, tmp_path: Path
) -> None:
    stack.load(
        "<think>\nLet me wait a little.\n```python\n"
        "import time\ntime.sleep(2)\nprint('slept')\n```\n",
        "Done waiting.</think>",
        "\n\n\\boxed{1}",
    )
    with Browser(tmp_path / "profile") as browser:
        browser.goto(f"{ui_url}/?temperature=0.3")  # a sidebar setting, from a shared link
        browser.wait_settled(60)
        browser.type_into(CHAT_INPUT, "Wait two seconds, then answer 1.")
        browser.wait_for_text("running in the sandbox", 60)  # drawn before the output exists
        page = browser.text()  # the cell's code may show (its thinking open), not its output
        assert page.count("slept") == page.count("print('slept')") and "timings:" not in page
        browser.screenshot(ARTIFACTS / "live.png")
        browser.wait_for_text("timings:", 60)
        browser.expand_all()
        assert "slept" in browser.text()
        assert stack.scripted.requests[-1]["temperature"] == 0.3  # the run sampled as set

        stack.load("<think>\nThis takes long.\n```python\nimport time\ntime.sleep(30)\n```\n")
        browser.type_into(CHAT_INPUT, "Take your time.")
        browser.wait_for_text("This takes long.", 60)
        browser.click("Stop this run")
        browser.wait_for_text("The run was cancelled", 30)
        browser.expand_all()
        assert "the run ended before this cell did" in browser.text()
        browser.wait_settled(30)
        browser.screenshot(ARTIFACTS / "cancelled.png")


def test_a_two_turn_conversation_keeps_its_kernel_and_settings(
    stack: Stack, ui_url: str, tmp_path: Path
) -> None:
    stack.load(*CODE_RUN)
    with Browser(tmp_path / "profile", height=2700) as browser:
        budget = ("Answer budget (tokens)", "answer_budget", "256")
        ask_with(browser, ui_url, budget, "What is 6 times 7?")
        browser.wait_settled(30)
        stack.load(*FOLLOW_UP)
        browser.type_into(CHAT_INPUT, "And plus one?")
        browser.wait_for("document.body.innerText.split('timings:').length == 3", 90, "turn 2")
        browser.reload()  # the conversation and the settings survive it
        browser.wait_for_text("And plus one?", 60)
        browser.wait_for_text(" / 256 tokens", 30)  # the meter of the answer budget
        folded = (  # the turns' expanders, not the sidebar's (Sampling)
            "[...document.querySelectorAll('details')]"
            ".filter(d => !d.closest('[data-testid=\"stSidebar\"]')).map(d => d.open)"
        )
        assert browser.evaluate(folded) == [False, False]  # finished turns fold their thinking
        field = "document.querySelector('input[aria-label=\"Answer budget (tokens)\"]')?.value"
        browser.wait_for(f"{field} == '256'", 30, "the answer budget restored from the URL")
        browser.expand_all()
        browser.wait_settled(30)
        shot = browser.screenshot(ARTIFACTS / "conversation.png")
        page = browser.text()
    for seen in ("What is 6 times 7?", "Let me compute it in Python.", "And plus one?",
                 "x is still defined.", "print(x + 1)", "43", "Fork from here"):  # fmt: skip
        assert seen in page, f"{seen!r} not on the page:\n{page}"
    assert page.index("What is 6 times 7?") < page.index("And plus one?")
    assert shot.stat().st_size > 20_000


def test_a_conversation_is_deleted_once_confirmed(
    stack: Stack, ui_url: str, tmp_path: Path
) -> None:
    stack.load(*CODE_RUN)
    with stack.client() as client:
        tid = client.post("/v1/threads", json={"title": "Doomed conversation"}).json()["id"]
        run_id = client.post(f"/v1/threads/{tid}/runs", json={"question": "6 * 7?"}).json()["id"]
        assert "run_finished" in client.get(f"/v1/runs/{run_id}/events", timeout=60).text
    with Browser(tmp_path / "profile") as browser:
        browser.goto(f"{ui_url}/?thread={tid}")
        browser.wait_for_text("Doomed conversation", 60)  # in the sidebar's list
        browser.wait_for_text("timings:", 60)
        browser.click("Delete conversation")  # opens the popover; nothing is deleted yet
        browser.wait_for_text("its kernel is released", 30)
        with stack.client() as client:
            assert client.get(f"/v1/threads/{tid}").status_code == 200
        browser.screenshot(ARTIFACTS / "delete-confirm.png")
        browser.click("Delete")
        browser.wait_for("!location.search.includes('thread=')", 30, "the page leaving the thread")
        browser.wait_settled(30)
        assert "Doomed conversation" not in browser.text()
    with stack.client() as client:
        assert client.get(f"/v1/threads/{tid}").status_code == 404
        assert client.get(f"/v1/runs/{run_id}").status_code == 200  # its runs stay readable
