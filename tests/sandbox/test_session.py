"""What a notebook-like session gives its owner: state, streams, values, errors, limits."""

from __future__ import annotations

import ast

from sandbox.pool import Session
from sandbox.result import Status


async def test_state_persists_between_calls(session: Session) -> None:
    assert (await session.run("x = 40")).value is None
    result = await session.run("def inc(v):\n    return v + 1\ninc(x) + 1")
    assert result.status is Status.ok
    assert result.value == "42"


async def test_stdout_and_stderr_are_separate(session: Session) -> None:
    result = await session.run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


async def test_fd_level_and_child_process_output_is_captured(session: Session) -> None:
    code = "import os, subprocess\nos.write(1, b'raw\\n')\nsubprocess.run(['echo', 'child'])"
    result = await session.run(code)
    assert result.status is Status.ok
    assert "raw" in result.stdout and "child" in result.stdout


async def test_value_is_repr_of_last_expression(session: Session) -> None:
    result = await session.run("import sympy\nsympy.Rational(1, 3)")
    assert result.value == "1/3"
    assert (await session.run("'text'")).value == "'text'"


async def test_exception_traceback_is_trimmed_to_user_code(session: Session) -> None:
    result = await session.run("def f(x):\n    return 1 / x\n\nf(0)")
    assert result.status is Status.error
    assert result.error is not None
    assert result.error.startswith("Traceback")
    assert "ZeroDivisionError: division by zero" in result.error
    assert "supervisor.py" not in result.error
    assert 'File "<cell-1>", line 2, in f' in result.error


async def test_syntax_error_is_reported(session: Session) -> None:
    result = await session.run("def f(:\n")
    assert result.status is Status.error
    assert result.error is not None and "SyntaxError" in result.error


async def test_output_over_the_cap_keeps_head_and_tail(session: Session) -> None:
    result = await session.run("print('HEAD' + 'x' * 1_000_000 + 'TAIL')")
    assert result.truncated
    assert result.stdout.startswith("HEAD") and result.stdout.rstrip().endswith("TAIL")
    assert "truncated" in result.stdout
    assert len(result.stdout.encode()) < 70 * 1024


async def test_forked_children_do_not_corrupt_the_protocol(session: Session) -> None:
    result = await session.run("import os\npid = os.fork()\n'parent' if pid else 'child'")
    assert result.value == "'parent'"
    assert (await session.run("1 + 1")).value == "2"


async def test_timeout_kills_and_next_call_is_fresh(session: Session) -> None:
    await session.run("keep = 1")
    result = await session.run("while True:\n    pass", timeout=1)
    assert result.status is Status.timeout
    assert result.error is not None and "killed" in result.error
    after = await session.run("'keep' in globals()")
    assert (after.status, after.value) == (Status.ok, "False")


async def test_crash_is_reported_with_exit_code(session: Session) -> None:
    result = await session.run("import os\nos._exit(3)")
    assert result.status is Status.crashed
    assert result.error is not None and "code 3" in result.error
    assert (await session.run("2 * 21")).value == "42"


async def test_null_byte_is_an_error_not_a_crash(session: Session) -> None:
    result = await session.run("x = 1\x00")
    assert result.status is Status.error


async def test_bad_input_is_rejected_with_a_reason(session: Session) -> None:
    cases: dict[str | bytes, str] = {
        "": "empty",
        "   \n\t": "empty",
        b"\xff\xfe print(1)": "UTF-8",
        "print('\ud800')": "Unicode",
        "x = 1\n" * 200_000: "limit",
    }
    for code, reason in cases.items():
        result = await session.run(code)
        assert result.status is Status.rejected, code[:20]
        assert result.error is not None and reason in result.error
    assert (await session.run("'still fine'")).value == "'still fine'"


async def test_math_libraries_are_installed(session: Session) -> None:
    result = await session.run(
        "import numpy, sympy, mpmath\n(int(numpy.arange(5).sum()), sympy.isprime(10**9 + 7))"
    )
    assert result.value == "(10, True)"


async def test_a_full_collection_does_not_copy_the_warm_heap(session: Session) -> None:
    """The preloaded libraries are shared with the supervisor copy-on-write; a full garbage
    collection (any cell allocating a few hundred thousand objects sets one off) must not write
    into them, which would copy the whole shared heap (~30 MiB) into the interpreter."""
    code = (
        "import gc\n"
        "def dirty():\n"
        "    rollup = open('/proc/self/smaps_rollup').read().split()\n"
        "    return int(rollup[rollup.index('Private_Dirty:') + 1]) >> 10\n"
        "before = dirty()\n"
        "gc.collect()\n"
        "(gc.get_freeze_count() > 10_000, dirty() - before)"
    )
    result = await session.run(code)
    assert result.status is Status.ok and result.value, result.error
    frozen, copied_mib = ast.literal_eval(result.value)
    assert frozen, "the warm heap is not frozen out of the collector's reach"
    assert copied_mib < 8, f"a full collection copied {copied_mib} MiB of the warm heap"
