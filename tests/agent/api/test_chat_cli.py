"""`startbox chat --api-url` in a real pseudo-terminal: turns stream, Ctrl-C cancels only the
turn, /think and /quit work."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import time

from tests.agent.api.conftest import KEY, Api, load, startbox


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.execve(argv[0], argv, env)
        self.seen = ""

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    async def expect(self, text: str, timeout: float = 60) -> None:
        """Wait for `text` in what the terminal shows after the last text expected."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen; the terminal shows:\n{self.seen[-3000:]}"
            ready, _, _ = await asyncio.to_thread(select.select, [self.fd], [], [], min(left, 1))
            if ready:
                self.seen += os.read(self.fd, 65536).decode(errors="replace")
        self.seen = self.seen[self.seen.index(text) + len(text) :]  # the next expect looks on

    async def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = await asyncio.to_thread(os.waitpid, self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            await asyncio.sleep(0.2)
        os.kill(self.pid, 9)
        raise AssertionError("startbox chat did not exit")


async def test_chat_streams_turns_and_ctrl_c_cancels_only_the_turn(api: Api) -> None:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", "STARTBOX_CHAT_API_KEY": KEY}
    term = Terminal([startbox(), "chat", "--api-url", api.url], env)
    await term.expect("you> ")
    load(api, "<think>\n```python\nk = 7\n```\n", "Set.</think>", "\n\n\\boxed{7}")
    term.send("set k\n")
    await term.expect("answer")
    await term.expect("you> ")
    load(api, "<think>\n```python\nimport time\ntime.sleep(60)\n```\n")
    term.send("sleep\n")
    await term.expect("code #1")
    term.send("\x03")  # Ctrl-C
    await term.expect("turn cancelled", timeout=30)
    term.send("/think off\n")
    await term.expect("thinking off")
    load(api, "```python\nprint(k * 6)\n```\n", "\\boxed{42}")
    term.send("k times 6\n")
    await term.expect("output #1 · ok")
    await term.expect("42")  # k survived the cancelled turn
    await term.expect("you> ")
    term.send("/quit\n")
    assert await term.exit_code() == 0
