"""The supervisor owns the protocol: every forging attack yields at worst wrong output for the
attacker's own session, within the caps, and nothing malformed escapes `Session.run`."""

from __future__ import annotations

import ast
import json

import pytest

from sandbox.container import decode_reply
from sandbox.errors import ContainerGone
from sandbox.pool import SandboxPool, Session
from sandbox.result import Status
from tests.sandbox.processes import other_processes

FORGED = json.dumps({"id": 2, "status": "ok", "stdout": "FORGED", "value": "'FORGED'"})


async def test_writing_a_forged_reply_to_every_fd_only_prints(session: Session) -> None:
    code = (
        "import os, sys, json\n"
        f"forged = {FORGED!r}\n"
        "frame, ids = sys._getframe(), []\n"
        "while frame:\n"
        "    ids += [v for k, v in frame.f_locals.items() if k in ('rid', 'id', 'request')]\n"
        "    frame = frame.f_back\n"
        "written = []\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, (forged + '\\n').encode())\n"
        "        written.append(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "denied = []\n"
        "for path in ('/proc/1/fd/0', '/proc/1/fd/1', '/proc/1/fd/3', '/proc/1/mem'):\n"
        "    try:\n"
        "        open(path, 'wb')\n"
        "    except OSError as e:\n"
        "        denied.append(type(e).__name__)\n"
        "denied"
    )
    result = await session.run(code, timeout=5)
    # the only writable fd besides stdout/stderr is the report pipe: the junk is refused there
    assert result.status is Status.crashed, result
    assert "FORGED" not in (result.value or "") and "FORGED" not in result.stdout
    after = await session.run("import os\nos.getuid(), 6 * 7")
    assert (after.status, after.value) == (Status.ok, "(65534, 42)")
    denied = await session.run(
        "import os\nout = []\n"
        "for path in ('/proc/1/fd/1', '/proc/1/mem', '/proc/1/environ'):\n"
        "    try:\n"
        "        open(path, 'rb').read(1)\n"
        "        out.append('open')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "out"
    )
    assert denied.value == "['PermissionError', 'PermissionError', 'PermissionError']"


async def test_pid_1_cannot_be_signalled_or_limited(session: Session) -> None:
    code = (
        "import os, signal, resource\nout = []\n"
        "for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):\n"
        "    try:\n"
        "        os.kill(1, sig)\n"
        "        out.append('sent')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "try:\n"
        "    resource.prlimit(1, resource.RLIMIT_NOFILE, (3, 3))\n"
        "    out.append('limited')\n"
        "except OSError as e:\n"
        "    out.append(type(e).__name__)\n"
        "out"
    )
    result = await session.run(code)
    assert result.value == str(["PermissionError"] * 5)
    assert (await session.run("'alive'")).value == "'alive'"


async def test_the_spare_interpreter_is_out_of_reach(session: Session) -> None:
    """The interpreter forked ahead stays root until handed out: the session running beside
    it can neither signal, limit, trace nor read it."""
    code = (
        "import ctypes, os, signal, resource\n"
        "spares = [int(p) for p in os.listdir('/proc') if p.isdigit() and p != '1'\n"
        "          and os.stat(f'/proc/{p}').st_uid == 0]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "out = []\n"
        "for pid in spares:\n"
        "    for attempt in (lambda: os.kill(pid, signal.SIGKILL),\n"
        "                    lambda: os.kill(pid, signal.SIGSTOP),\n"
        "                    lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)),\n"
        "                    lambda: open(f'/proc/{pid}/environ').read(),\n"
        "                    lambda: open(f'/proc/{pid}/mem', 'rb').read(1),\n"
        "                    lambda: os.listdir(f'/proc/{pid}/fd')):\n"
        "        try:\n"
        "            attempt()\n"
        "            out.append('reached')\n"
        "        except OSError as e:\n"
        "            out.append(type(e).__name__)\n"
        "    out.append(libc.ptrace(16, pid, 0, 0) == 0)  # PTRACE_ATTACH\n"
        "len(spares), out"
    )
    for _ in range(5):  # the spare is forked while the supervisor has no request waiting
        result = await session.run(code)
        assert result.status is Status.ok and result.value is not None, result.error
        spares, out = ast.literal_eval(result.value)
        if spares:
            break
    assert spares == 1, "the supervisor keeps one spare interpreter"
    assert out == ["PermissionError"] * 6 + [False]
    assert (await session.run("6 * 7")).value == "42", "the spare still serves"


async def test_a_replaced_handler_cannot_bypass_caps_or_leave_the_session(
    pool: SandboxPool,
) -> None:
    # reach the interpreter object through the frames and make every later call "succeed"
    hijack = (
        "import sys\n"
        "sys.modules['__main__'].handle = lambda *a: {'status': 'ok', 'stdout': 'FORGED'}\n"
        "frame = sys._getframe()\n"
        "while 'self' not in frame.f_locals:\n"
        "    frame = frame.f_back\n"
        "interp = frame.f_locals['self']\n"
        "def forged(request, program):\n"
        "    return {'nonce': request['nonce'], 'status': 'ok', 'value': 'F' * (8 << 20),\n"
        "            'error': None, 'images': []}, 0\n"
        "interp.run = forged\n"
    )
    async with pool.session(tenant="hijacker") as session:
        await session.run(hijack)
        forged = await session.run("print('never runs')")
        assert forged.status is Status.ok and forged.stdout == ""
        assert forged.truncated and forged.value is not None
        assert len(forged.value.encode()) < 70 * 1024
    async with pool.session(
        tenant="hijacker"
    ) as session:  # a recycled container, fresh interpreter
        assert (await session.run("print('runs')\n1 + 1")).stdout == "runs\n"


async def test_a_forked_child_cannot_answer_the_next_call(session: Session) -> None:
    code = (
        "import os, struct, json, time\n"
        "def forge():\n"
        "    body = json.dumps({'nonce': 'x', 'status': 'ok', 'value': \"'FORGED'\"}).encode()\n"
        "    for _ in range(500):\n"
        "        try:\n"
        "            os.write(4, struct.pack('>I', len(body)) + body)\n"
        "            os.write(1, b'FORGED\\n')\n"
        "            os.read(3, 1 << 20)  # steal the next request, if it could\n"
        "        except OSError:\n"
        "            pass\n"
        "        time.sleep(0.01)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        forge()\n"
        "    os._exit(0)\n"
        "'forked'"
    )
    first = await session.run(code)
    assert first.value == "'forked'"
    for _ in range(3):
        result = await session.run("import os\nsorted(os.listdir('/proc'))[:1], 6 * 7")
        assert result.status is Status.ok and result.value == "(['1'], 42)"
        assert "FORGED" not in result.stdout
    users, roots = await other_processes(session)
    assert users == 0 and roots in (1, 2), "only pid 1, a spare and the interpreter outlive a call"


async def test_output_floods_and_forged_reports_stay_within_the_caps(session: Session) -> None:
    code = (
        "import os, struct, json, subprocess, sys\n"
        "os.write(1, b'o' * (30 << 20))\n"
        "os.write(2, b'e' * (8 << 20))\n"
        "subprocess.run(['sh', '-c', 'head -c 20000000 /dev/zero | tr \"\\\\0\" x'])\n"
        "sys.stdout.write('y' * (10 << 20))\n"
        "'v' * (8 << 20)"
    )
    result = await session.run(code, timeout=30)
    assert result.status is Status.ok, result.error
    assert result.truncated
    for text in (result.stdout, result.stderr, result.value or ""):
        assert len(text.encode()) < 70 * 1024


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"nonce": NONCE, "status": "pwned"}', "unknown status"),
        (b'{"nonce": NONCE, "status": "ok", "value": 5}', "non-text value"),
        (b'{"nonce": NONCE, "status": "ok", "stdout": "FORGED"}', "unknown fields"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
async def test_malformed_reports_are_crashed_with_a_reason(
    session: Session, report: bytes, reason: str
) -> None:
    code = (
        "import os, struct, sys\n"
        "frame = sys._getframe()\n"
        "while 'nonce' not in frame.f_locals:\n"
        "    frame = frame.f_back\n"
        f"body = {report!r}.replace(b'NONCE', ('\"' + frame.f_locals['nonce'] + '\"').encode())\n"
        "os.write(4, struct.pack('>I', len(body)) + body)\n"
        "import time; time.sleep(1)"
    )
    result = await session.run(code, timeout=5)
    assert result.status is Status.crashed
    assert result.error is not None and reason in result.error
    assert (await session.run("2 + 2")).value == "4"


async def test_an_oversized_report_is_refused_at_once(session: Session) -> None:
    code = "import os, struct\nos.write(4, struct.pack('>I', 1 << 31))\nimport time; time.sleep(5)"
    result = await session.run(code, timeout=10)
    assert result.status is Status.crashed and "size cap" in (result.error or "")
    assert result.duration_ms < 4000


def test_the_host_refuses_malformed_replies_without_raising_anything_else() -> None:
    assert decode_reply(b'{"id": 1, "status": "ok"}', 1)["status"] == "ok"
    for line, reason in [
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b"{not json", "JSON"),
        (b'{"id": 7, "status": "ok"}', "did not match"),
        (b'["a list"]', "did not match"),
    ]:
        with pytest.raises(ContainerGone, match=reason):
            decode_reply(line, 1)


async def test_unknown_status_in_a_reply_is_crashed(session: Session) -> None:
    from sandbox.pool import to_result

    assert to_result({"status": "pwned"}).status is Status.crashed
    assert to_result({"status": "ok", "stdout": ["x"]}).status is Status.crashed
    assert to_result({"status": "ok", "stdout": "\ud800"}).model_dump_json()


async def test_a_megabyte_of_code_arrives_fast(session: Session) -> None:
    code = "s = '" + "x" * (1024 * 1024 - 100) + "'\nlen(s)"
    result = await session.run(code, timeout=3)
    assert result.status is Status.ok and result.value == str(1024 * 1024 - 100)


async def test_a_lone_surrogate_in_output_is_replaced_where_written(session: Session) -> None:
    result = await session.run(
        "import sys\nprint('a\\ud800b')\nprint('\\udfff', file=sys.stderr)\n"
        "raise ValueError('\\ud800')"
    )
    assert result.stdout == "a\\ud800b\n" and result.stderr == "\\udfff\n"
    assert result.error is not None and "ValueError" in result.error
    json.loads(result.model_dump_json())
