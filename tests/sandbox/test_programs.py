"""stdin, whole programs, figures, and waiting told apart from running."""

from __future__ import annotations

import base64

import pytest

from sandbox.errors import PoolExhausted
from sandbox.pool import SandboxPool, Session
from sandbox.result import Status

SUM_STDIN = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))"


async def test_a_cell_reads_its_stdin(session: Session) -> None:
    result = await session.run("a = input()\nb = input()\nint(a) * int(b)", stdin="6\n7\n")
    assert result.value == "42"
    eof = await session.run("input()")
    assert eof.status is Status.error and "EOFError" in (eof.error or "")


async def test_a_program_runs_fresh_with_stdin_and_an_exit_code(session: Session) -> None:
    await session.run("kept = 1")
    result = await session.run_program(SUM_STDIN, stdin="1 2 3\n4\n")
    assert (result.status, result.stdout, result.exit_code) == (Status.ok, "10\n", 0)
    isolated = await session.run_program(
        "print(__name__, 'kept' in globals())\nimport sys\nsys.exit(3)"
    )
    assert isolated.stdout == "__main__ False\n"
    assert (isolated.status, isolated.exit_code) == (Status.error, 3)
    failing = await session.run_program("raise ValueError('bad')")
    assert failing.exit_code == 1 and "ValueError: bad" in failing.stderr
    assert (await session.run("kept")).value == "1", "the session's interpreter is untouched"


async def test_a_program_timeout_leaves_the_session_alone(session: Session) -> None:
    await session.run("kept = 2")
    result = await session.run_program("while True: pass", timeout=1)
    assert result.status is Status.timeout
    assert (await session.run("kept")).value == "2"


async def test_programs_are_fast_enough_for_grading_loops(pool: SandboxPool) -> None:
    async with pool.session(tenant="grader") as session:
        for n in range(20):
            result = await session.run_program(SUM_STDIN, stdin=f"{n} {n}")
            assert result.stdout == f"{2 * n}\n"


async def test_open_and_shown_figures_come_back_as_png(session: Session) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [1, 4, 9])\n"
        "plt.show()\n"
        "fig = plt.figure(figsize=(3, 2))\n"
        "fig.gca().bar([1, 2], [3, 4])"
    )
    result = await session.run(code)
    assert result.status is Status.ok, result.error
    assert [(i.width, i.height) for i in result.images] == [(640, 480), (300, 200)]
    for image in result.images:
        assert image.mime == "image/png"
        assert base64.b64decode(image.data).startswith(b"\x89PNG")
    assert (await session.run("1")).images == [], "figures are closed once returned"


async def test_figures_are_capped_in_count(session: Session) -> None:
    code = "import matplotlib.pyplot as plt\nfor i in range(12):\n    plt.figure()\n'made'"
    result = await session.run(code)
    assert len(result.images) == 8 and result.truncated


async def test_waiting_is_reported_apart_from_running(small_pool: SandboxPool) -> None:
    async with small_pool.session(lazy=True) as session:
        result = await session.run("1")
        assert result.wait_ms > 0 and result.duration_ms > 0
        assert (await session.run("2")).wait_ms == 0
        small_pool.settings.acquire_timeout = 0.5
        try:
            with pytest.raises(PoolExhausted, match="sessions to end"):
                async with small_pool.session(lazy=True) as other:
                    await other.run("1")
        finally:
            small_pool.settings.acquire_timeout = 120
