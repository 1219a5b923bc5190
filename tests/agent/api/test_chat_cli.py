"""`startbox chat` in a real pseudo-terminal, over a running API (`--api-url`) and in-process:
turns stream, Ctrl-C cancels only the turn, /think and /quit work, sampling flags reach the
model."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import signal
import time
from pathlib import Path

from model_host.scripted import Reply, ScriptedServer
from tests.agent.api.conftest import KEY, Api, load, startbox
from tests.ports import scripted_api_env


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.execve(argv[0], argv, env)
        self.seen = self.shown = ""  # not yet expected; everything

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """A test that failed midway leaves no chat behind (an in-process one owns a pool)."""
        with contextlib.suppress(ChildProcessError):  # reaped by exit_code()
            if os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                os.kill(self.pid, signal.SIGTERM)
                deadline = time.monotonic() + 30
                while os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                    if time.monotonic() > deadline:
                        os.kill(self.pid, signal.SIGKILL)
                    time.sleep(0.2)
        os.close(self.fd)

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
                chunk = os.read(self.fd, 65536).decode(errors="replace")
                self.seen, self.shown = self.seen + chunk, self.shown + chunk
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
    with Terminal([startbox(), "chat", "--api-url", api.url, "--top-k", "13"], env) as term:
        await term.expect("you> ")
        load(api, "<think>\n```python\nk = 7\n```\n", "Set.</think>", "\n\n\\boxed{7}")
        term.send("set k\n")
        await term.expect("answer")
        sent = [r for r in api.scripted.requests if "set k" in r.get("prompt", "")]
        assert sent and all(r["top_k"] == 13 for r in sent)  # the turn's sampling
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
        await term.expect("output #1 · ok")  # k survived the cancelled turn (else NameError)
        await term.expect("you> ")
        term.send("/quit\n")
        assert await term.exit_code() == 0


async def test_chat_in_process_keeps_the_kernel_and_samples_as_asked(tmp_path: Path) -> None:
    turns = [
        "<think>\n```python\nk = 7\n```\n", "Set.</think>", "\n\n\\boxed{7}",
        "<think>\n```python\nprint(k * 6)\n```\n", "Done.</think>", "\n\n\\boxed{42}",
    ]  # fmt: skip
    async with ScriptedServer([Reply(text=t) for t in turns]) as scripted:
        env = {
            **scripted_api_env(scripted.base_url, tmp_path, port=0),  # no API: the env's store
            "NO_COLOR": "1",
            "COLUMNS": "160",
            "STARTBOX_SANDBOX_POOL_SIZE": "1",
        }
        with Terminal([startbox(), "chat", "--temperature", "0.25"], env) as term:
            await term.expect("you> ", timeout=180)  # the agent starts its sandbox pool first
            term.send("set k\n")
            await term.expect("you> ")
            term.send("k times 6\n")
            await term.expect("output #1 · ok")  # k is defined: else a NameError
            await term.expect("you> ")
            term.send("/quit\n")
            assert await term.exit_code() == 0
    assert "kernel restored" not in term.shown  # the second turn ran in the first one's kernel
    sampled = {(r["temperature"], r["top_p"]) for r in scripted.requests}
    assert sampled == {(0.25, 0.95)}  # the flag over the qwen3 profile's top_p
