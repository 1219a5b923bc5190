"""A short walk through the sandbox for `make demo`: state, an error, a timeout, a limit."""

from __future__ import annotations

from rich.console import Console
from rich.syntax import Syntax

from sandbox.pool import SandboxPool
from sandbox.render import render_result
from sandbox.settings import SandboxSettings

STEPS: list[tuple[str, str, float]] = [
    ("state persists between calls", "import sympy\nn = 2**61 - 1\nsympy.isprime(n)", 10),
    ("…so the next cell sees n", "print(sympy.factorint(n + 1))\nn.bit_length()", 10),
    ("an exception comes back as a trimmed traceback", "def f(x):\n    return 1 / x\n\nf(0)", 10),
    ("an endless loop is killed at its timeout", "while True:\n    pass", 2),
    ("a fresh interpreter takes over after the kill", "'n' in globals()", 10),
    ("no network inside", "import socket\nsorted(n for _, n in socket.if_nameindex())", 10),
]


async def run_demo(console: Console | None = None) -> None:
    console = console or Console()
    with console.status("starting a warm sandbox"):
        pool = await SandboxPool(SandboxSettings(pool_size=1)).__aenter__()
    try:
        async with pool.session() as session:
            for title, code, timeout in STEPS:
                console.rule(f"[bold]{title}")
                console.print(Syntax(code, "python", theme="ansi_dark"))
                render_result(console, await session.run(code, timeout=timeout))
    finally:
        await pool.close()
