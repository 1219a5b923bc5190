"""The hardening, checked from inside: every probe stays on loopback or reads local state."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import pytest

from sandbox.pool import SandboxPool, Session
from sandbox.result import Status
from tests.sandbox.processes import other_processes


async def probe(session: Session, code: str) -> dict[str, object]:
    """What `code` found, sent back as a JSON object in the repr of its last expression."""
    result = await session.run(code)
    assert result.status is Status.ok, result.error
    assert result.value is not None
    seen = json.loads(ast.literal_eval(result.value))
    assert isinstance(seen, dict), seen
    return seen


async def test_only_loopback_and_no_route(session: Session) -> None:
    code = (
        "import json, socket\n"
        "routes = open('/proc/net/route').read().splitlines()[1:]\n"
        "json.dumps({'ifaces': sorted(n for _, n in socket.if_nameindex()), 'routes': routes})"
    )
    assert await probe(session, code) == {"ifaces": ["lo"], "routes": []}


async def test_cannot_reach_a_port_on_the_hosts_loopback(session: Session) -> None:
    connected: list[bool] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.append(True)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        code = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    r = 'connected'\n"
            "except OSError as e:\n"
            "    r = type(e).__name__\n"
            "r"
        )
        result = await session.run(code)
    assert result.value == "'ConnectionRefusedError'"
    assert connected == []


async def test_root_filesystem_is_read_only_and_workdir_is_writable(session: Session) -> None:
    code = (
        "import json, os\n"
        "def writable(path):\n"
        "    try:\n"
        "        open(os.path.join(path, 'probe'), 'w').close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "places = ['/', '/etc', '/tmp', '/usr', '/run/startbox', '/dev/mqueue', '/dev/shm']\n"
        "json.dumps({p: writable(p) for p in [*places, os.getcwd()]})"
    )
    assert await probe(session, code) == {
        "/": False,
        "/etc": False,
        "/tmp": False,
        "/usr": False,
        "/run/startbox": False,  # the supervisor's own tmpfs
        "/dev/mqueue": False,  # POSIX message queues are closed (RLIMIT_MSGQUEUE 0)
        "/dev/shm": True,  # size-capped, wiped between sessions
        "/work": True,
    }


async def test_no_other_writable_place(session: Session) -> None:
    code = (
        "import os\nfound = []\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    if root.startswith(('/proc', '/sys')):\n"
        "        dirs[:] = []\n"
        "        continue\n"
        "    if os.access(root, os.W_OK):\n"
        "        found.append(root)\n"
        "sorted(found)"
    )
    result = await session.run(code, timeout=30)
    assert result.value == "['/dev/mqueue', '/dev/shm', '/work']"


async def test_runs_unprivileged(session: Session) -> None:
    code = (
        "import json, os\n"
        "caps = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines()"
        " if l.startswith('Cap'))\n"
        "json.dumps({'uid': os.getuid(), 'eff': caps['CapEff'].strip(),"
        " 'nnp': open('/proc/self/status').read().count('NoNewPrivs:\\t1'),"
        " 'nice': os.getpriority(os.PRIO_PROCESS, 0)})"
    )
    found = {"uid": 65534, "eff": "0000000000000000", "nnp": 1, "nice": 19}
    assert await probe(session, code) == found
    # the supervisor's CAP_SYS_NICE stays with it: the code cannot take back the CPU it yields
    renice = await session.run("import os\nos.setpriority(os.PRIO_PROCESS, 0, 0)")
    assert renice.status == "error" and "PermissionError" in (renice.error or "")


async def test_host_files_and_environment_are_not_visible(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "canary"
    canary.write_text("secret")
    monkeypatch.setenv("STARTBOX_TEST_CANARY", "secret")
    code = (
        "import json, os\n"
        f"json.dumps({{'canary': os.path.exists({str(canary)!r}),"
        " 'docker_sock': any(os.path.exists(p) for p in"
        " ['/var/run/docker.sock', '/run/docker.sock']),"
        " 'env': sorted(os.environ)})"
    )
    seen = await probe(session, code)
    assert seen["canary"] is False and seen["docker_sock"] is False
    assert isinstance(seen["env"], list)
    assert set(seen["env"]) <= {
        "HOME",
        "HOSTNAME",
        "LANG",
        "PATH",
        "TMPDIR",
        "MPLBACKEND",
        "MPLCONFIGDIR",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
    }


async def test_concurrent_sessions_are_isolated(pool: SandboxPool) -> None:
    async with pool.session() as a, pool.session() as b:
        await a.run("secret = 'a'\nopen('note', 'w').write('a')")
        code = (
            "import json, os\n"
            "json.dumps({'var': 'secret' in globals(), 'file': os.path.exists('note')})"
        )
        seen = await probe(b, code)
        running, exiting, roots = await other_processes(b)
    assert seen["var"] is False and seen["file"] is False
    assert running == exiting == 0 and roots in (1, 2), "another container's processes are visible"


async def test_memory_bomb_is_reported_as_oom(small_pool: SandboxPool) -> None:
    async with small_pool.session() as session:
        result = await session.run("blocks = []\nwhile True:\n    blocks.append(b'x' * 10**7)")
        assert result.status is Status.oom
        assert result.error is not None and "128m" in result.error
        assert (await session.run("1 + 1")).value == "2"


async def test_fork_bomb_is_contained(small_pool: SandboxPool) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    async with small_pool.session() as session:
        result = await session.run(bomb, timeout=3)
        # stopped by the clock, or by the memory watch when the forks fill the limit first
        assert result.status in (Status.timeout, Status.oom)
        host = await asyncio.create_subprocess_exec("true")  # the host can still fork
        assert await asyncio.wait_for(host.wait(), 10) == 0
        counted = await session.run(
            "import os\nn = 0\n"
            "try:\n"
            "    for _ in range(200):\n"
            "        if os.fork() == 0:\n"
            "            import time; time.sleep(30); os._exit(0)\n"
            "        n += 1\n"
            "except OSError:\n"
            "    pass\n"
            "n",
            timeout=60,
        )
        # the pids limit stops the forks, or the memory watch does when their pages fill it first
        assert counted.status is Status.oom or (
            counted.value is not None and int(counted.value) < 64
        ), counted
