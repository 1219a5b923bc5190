"""startbox sandbox runner: one long-lived interpreter per container, like a notebook kernel.

It runs inside the sandbox image, so it uses the standard library only. Requests and replies are
JSON lines on private duplicates of stdin/stdout; the real fds 0/1/2 are pointed elsewhere so
nothing the user's code prints (even with os.write or from a child process) can corrupt the
protocol.
"""

from __future__ import annotations

import ast
import builtins
import json
import linecache
import os
import sys
import tempfile
import time
import traceback
from typing import Any

DEFAULT_MAX_OUTPUT = 64 * 1024
PREIMPORTS = ("numpy", "sympy", "mpmath")


def clip(text: str, cap: int) -> tuple[str, bool]:
    """Keep the head and tail of `text` within `cap` UTF-8 bytes, with a marker between."""
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return text, False
    half = cap // 2
    head = data[:half].decode("utf-8", "ignore")
    tail = data[len(data) - half :].decode("utf-8", "ignore")
    return f"{head}\n... [{len(data) - 2 * half} bytes truncated] ...\n{tail}", True


class Capture:
    """A text stream that keeps only a bounded head and tail, so a print loop cannot eat memory."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head: list[str] = []
        self.head_len = 0
        self.tail: list[str] = []
        self.tail_len = 0
        self.dropped = 0

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self.cap - self.head_len
        if room > 0:
            self.head.append(s[:room])
            self.head_len += min(room, len(s))
            s = s[room:]
        if s:
            self.tail.append(s)
            self.tail_len += len(s)
            if self.tail_len > 2 * self.cap:
                joined = "".join(self.tail)
                self.dropped += len(joined) - self.cap
                self.tail, self.tail_len = [joined[-self.cap :]], self.cap
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def text(self) -> tuple[str, bool]:
        body = "".join(self.head)
        if self.dropped:
            body += f"\n... [{self.dropped} characters dropped] ...\n"
        body += "".join(self.tail)
        text, clipped = clip(body, self.cap)
        return text, clipped or bool(self.dropped)


class FdSink:
    """Catches what reaches a real file descriptor (os.write, C extensions, child processes)."""

    def __init__(self, fd: int) -> None:
        # open for the life of the process, so no context manager
        self.file = tempfile.TemporaryFile(dir=os.getcwd())  # noqa: SIM115
        os.dup2(self.file.fileno(), fd)

    def drain(self) -> str:
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        self.file.truncate()
        return data.decode("utf-8", "replace")


class Kernel:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.cell = 0

    def run(self, code: str, cap: int) -> dict[str, Any]:
        self.cell += 1
        filename = f"<cell-{self.cell}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        out, err = Capture(cap), Capture(cap)
        sys.stdout, sys.stderr = out, err
        status, value, error = "ok", None, None
        try:
            tree = ast.parse(code, filename)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, filename, "exec"), self.namespace)
            if last is not None:
                result = eval(compile(ast.Expression(last.value), filename, "eval"), self.namespace)
                if result is not None:
                    value = repr(result)
        except MemoryError:
            status, error = "oom", "MemoryError: the code ran out of memory"
        except BaseException as exc:  # SystemExit and KeyboardInterrupt belong to the user too
            status, error = "error", format_user_error(exc, filename)
        finally:
            if os.getpid() != self.pid:
                os._exit(0)  # a child forked by the user's code must never speak the protocol
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        stdout, t_out = out.text()
        stderr, t_err = err.text()
        reply: dict[str, Any] = {"status": status, "stdout": stdout, "stderr": stderr}
        truncated = t_out or t_err
        if value is not None:
            value, t_val = clip(value, cap)
            truncated = truncated or t_val
        if error is not None:
            error, t_e = clip(error, cap)
            truncated = truncated or t_e
        reply.update(value=value, error=error, truncated=truncated)
        return reply


def format_user_error(exc: BaseException, filename: str) -> str:
    """The traceback from the first frame of user code on; the runner's frames are noise."""
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def warm_up() -> None:
    """Import the heavy libraries once, before any session is handed out."""
    for name in PREIMPORTS:
        try:
            __import__(name)
        except ImportError:
            continue
    if "sympy" in sys.modules:
        sys.modules["sympy"].isprime(2**31 - 1)


def handle(kernel: Kernel, sinks: dict[str, FdSink], line: bytes) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        request = json.loads(line)
        if request.get("op") == "ping":
            return {"id": request.get("id"), "status": "ok"}
        code, cap = request["code"], int(request.get("max_output", DEFAULT_MAX_OUTPUT))
        if not isinstance(code, str):
            raise TypeError("code must be a string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return {"id": None, "status": "rejected", "error": f"malformed request: {exc!r}"}
    reply = kernel.run(code, cap)
    sys.__stdout__.flush()
    sys.__stderr__.flush()
    for name, sink in sinks.items():
        extra = sink.drain()
        if extra:
            reply[name], clipped = clip(reply[name] + extra, cap)
            reply["truncated"] = reply["truncated"] or clipped
    reply.update(id=request.get("id"), duration_ms=(time.perf_counter() - started) * 1000)
    return reply


def main() -> None:
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sinks = {"stdout": FdSink(1), "stderr": FdSink(2)}
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", closefd=False)  # noqa: SIM115
    warm_up()
    kernel = Kernel()
    for line in requests:
        replies.write(json.dumps(handle(kernel, sinks, line)).encode() + b"\n")


if __name__ == "__main__":
    main()
