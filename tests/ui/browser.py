"""Debian's headless Chromium driven over the DevTools protocol, with no browser download.

Streamlit draws its page over a websocket, so `chromium --screenshot` (which does not wait for
it) shows a blank page; a few DevTools commands (navigate, evaluate, type, screenshot) do.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from itertools import count
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"  # screenshots, git-ignored
CHAT_INPUT = 'textarea[data-testid="stChatInputTextArea"]'
FLAGS = [  # DESIGN.md: no background traffic off this machine, no sandbox as root
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]  # fmt: skip

SETTLED = """
!document.querySelector('[data-testid="stSkeleton"], [data-testid="stStatusWidget"]')
&& !document.querySelector('[data-stale="true"]')
&& document.fonts.status === 'loaded'
&& (!document.querySelector('.katex') || document.fonts.check('1em KaTeX_Main'))
"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with a fresh profile and one page; a context manager."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1800) -> None:
        executable = chromium_path()
        if executable is None:
            raise RuntimeError("no chromium: apt-get install chromium (scripts/setup-system.sh)")
        self.profile, self.width, self.height = profile, width, height
        self._log = (profile.parent / f"{profile.name}.log").open("wb")
        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=self._log, stderr=self._log,
        )  # fmt: skip
        self._ids = count(1)
        self._closing = contextlib.ExitStack()
        self._ws: ClientConnection | None = None

    def __enter__(self) -> Browser:
        try:
            port = self._devtools_port(30)
            pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10, trust_env=False)
            url = next(t for t in pages.json() if t["type"] == "page")["webSocketDebuggerUrl"]
            self._ws = self._closing.enter_context(
                connect(url, max_size=64 * 1024 * 1024, open_timeout=10)
            )
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._log.close()

    def _devtools_port(self, seconds: float) -> int:
        """Chromium writes the port it chose into the profile once it listens."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited {self._process.returncode}; see its log")
            if marker.exists() and (lines := marker.read_text().split()):
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not open DevTools within {seconds:.0f} s")

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result; events in between are skipped."""
        assert self._ws is not None, "use the Browser as a context manager"
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = json.loads(self._ws.recv(timeout=left))
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(f"{method} got no answer within {timeout:.0f} s")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def reload(self) -> None:
        """Reload, and return once the new document is there (not the old one unloading)."""
        self.evaluate("window.beforeReload = true")
        self.send("Page.reload")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):  # the page is between documents
                if self.evaluate("window.beforeReload === undefined"):
                    return
            time.sleep(0.2)
        raise TimeoutError("the page did not reload within 30 s")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def wait_for(self, expression: str, seconds: float, what: str) -> None:
        """Until the JavaScript `expression` is true in the page."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.evaluate(f"Boolean({expression})"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not seen within {seconds:.0f} s; the page says:\n"
                           f"{self.text()[-3000:]}")  # fmt: skip

    def wait_settled(self, seconds: float) -> None:
        """Until Streamlit has drawn everything: no script run pending, no lazily loaded
        element still a skeleton, formulas with their fonts, for three polls in a row."""
        deadline, calm = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            calm = calm + 1 if self.evaluate(SETTLED) else 0
            if calm >= 3:
                return
            time.sleep(0.2)
        raise TimeoutError(f"the page did not settle within {seconds:.0f} s")

    def wait_for_text(self, needle: str, seconds: float) -> None:
        self.wait_for(f"document.body && document.body.innerText.includes({json.dumps(needle)})",
                      seconds, repr(needle))  # fmt: skip

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element, type the text as if by keyboard, and press Enter."""
        self.wait_for(f"document.querySelector({json.dumps(selector)})", 30, selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, nativeVirtualKeyCode=13, text="\r")  # fmt: skip

    def click(self, label: str) -> None:
        """The button with a line of text `label` (its icons' ligature names are lines of
        their own, before or after it), once it is there."""
        find = (
            "[...document.querySelectorAll('button')].find(b => b.innerText.split('\\n')"
            f".some(line => line.trim() === {json.dumps(label)}))"
        )
        self.wait_for(find, 30, f"button {label!r}")
        self.evaluate(f"{find}.click()")

    def expand_all(self, seconds: float = 60) -> None:
        """Open every folded expander (a run's thinking), so its content is drawn and read;
        again if a redraw folds one back (the rerun after a turn ends does)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.wait_settled(seconds)
            closed = self.evaluate("[...document.querySelectorAll('details:not([open]) > summary')]"
                                   ".map(s => s.click()).length")  # fmt: skip
            if not closed:
                return
            time.sleep(0.3)
        raise TimeoutError(f"expanders still folded after {seconds:.0f} s")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path
