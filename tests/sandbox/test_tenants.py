"""Tenants and recycling: a released container serves only its tenant's next session, and
nothing the previous session left anywhere reaches it."""

from __future__ import annotations

import ast
import json

from sandbox.pool import SandboxPool, Session
from sandbox.result import Status
from tests.sandbox.processes import other_processes

CONTAINER_ID = "open('/proc/self/cgroup').read()"

LEAVE_TRACES = r"""
import ctypes, os, resource, signal, socket, subprocess
libc = ctypes.CDLL(None, use_errno=True)
open('/work/left.txt', 'w').write('secret')
os.makedirs('/work/deep/er', exist_ok=True)
open('/work/deep/er/f', 'w').write('x')
os.chmod('/work/deep/er', 0)
os.chmod('/work/deep', 0)
open('/dev/shm/left', 'w').write('secret')
shm = libc.shmget(0x5eed, 4096, 0o1600)   # IPC_CREAT | 0600
sem = libc.semget(0x5eed, 1, 0o1600)
msg = libc.msgget(0x5eed, 0o1600)
mq = libc.mq_open(b'/left', os.O_CREAT | os.O_RDWR, 0o600, None)
os.environ['LEFT_BEHIND'] = 'secret'
signal.signal(signal.SIGTERM, lambda *a: None)
resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
abstract = socket.socket(socket.AF_UNIX)
abstract.bind('\0startbox-left')
left = 'secret'
(shm >= 0, sem >= 0, msg >= 0, mq, ctypes.get_errno())
"""

FIND_TRACES = r"""
import json, os, resource, signal, socket
def listing(place):
    try:
        return sorted(os.listdir(place))
    except OSError as e:
        return type(e).__name__
def ipc(kind):
    return open(f'/proc/sysvipc/{kind}').read().splitlines()[1:]
try:
    s = socket.socket(socket.AF_UNIX)
    s.bind('\0startbox-left')
    abstract = 'free'
except OSError:
    abstract = 'taken'
json.dumps({
    'work': listing('/work'), 'shm': listing('/dev/shm'), 'mqueue': listing('/dev/mqueue'),
    'sysv': [ipc(k) for k in ('shm', 'sem', 'msg')],
    'env': 'LEFT_BEHIND' in os.environ, 'global': 'left' in globals(),
    'sigterm': signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
    'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 32,
    'abstract': abstract,
})
"""


async def container_of(session: Session) -> str:
    result = await session.run(CONTAINER_ID)
    assert result.value is not None
    return result.value


async def test_nothing_crosses_a_recycled_session(pool: SandboxPool) -> None:
    async with pool.session(tenant="alice") as first:
        left = await first.run(LEAVE_TRACES)
        assert left.status is Status.ok, left.error
        # SysV objects were made; the POSIX mqueue was refused (RLIMIT_MSGQUEUE is 0)
        assert left.value is not None and left.value.startswith("(True, True, True, -1")
        before = await container_of(first)
    async with pool.session(tenant="alice") as second:
        assert await container_of(second) == before, "the tenant's container was not reused"
        result = await second.run(FIND_TRACES)
        assert result.status is Status.ok, result.error
        assert result.value is not None
        seen = json.loads(ast.literal_eval(result.value))
        running, exiting, roots = await other_processes(second)
    assert running == exiting == 0, "a process of the previous session is still there"
    assert roots in (1, 2), "only pid 1 and the spare interpreter are root"
    assert seen == {
        "work": [],
        "shm": [],
        "mqueue": [],
        "sysv": [[], [], []],
        "env": False,
        "global": False,
        "sigterm": True,
        "nofile": True,
        "abstract": "free",
    }


async def test_tenants_never_share_a_container(pool: SandboxPool) -> None:
    async with pool.session(tenant="alice") as a:
        alice = await container_of(a)
    async with pool.session(tenant="bob") as b:
        assert await container_of(b) != alice
    async with pool.session() as anonymous:
        assert await container_of(anonymous) != alice
    async with pool.session(tenant="alice") as again:
        assert await container_of(again) == alice


async def test_a_session_without_a_tenant_is_never_recycled(pool: SandboxPool) -> None:
    async with pool.session() as first:
        before = await container_of(first)
    await pool.warm()
    for tenant in (None, "carol"):
        async with pool.session(tenant=tenant) as later:
            assert await container_of(later) != before


async def test_a_recycled_session_survives_timeouts_and_crashes(pool: SandboxPool) -> None:
    async with pool.session(tenant="dave") as session:
        before = await container_of(session)
        assert (await session.run("while True: pass", timeout=1)).status is Status.timeout
        assert (await session.run("import os\nos._exit(9)")).status is Status.crashed
        assert await container_of(session) == before, "the supervisor kept the container"
    async with pool.session(tenant="dave") as session:
        assert await container_of(session) == before
        assert (await session.run("6 * 7")).value == "42"


async def test_a_session_released_right_after_a_fork_bomb_is_recycled(pool: SandboxPool) -> None:
    """The reset replies before the bomb's processes have all exited (they still fill the pids
    limit): the supervisor survives its failed fork of a spare, and the next session of the
    tenant gets the same container and runs code and programs in it."""
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    async with pool.session(tenant="erin") as session:
        before = await container_of(session)
        result = await session.run(bomb, timeout=1)
        assert result.status in (Status.timeout, Status.oom), result
    for _ in range(3):
        async with pool.session(tenant="erin") as session:
            answer = await session.run(CONTAINER_ID)
            assert answer.value == before, answer
            assert (await session.run("6 * 7")).value == "42"
            program = await session.run_program("print(input())", stdin="fresh")
            assert program.stdout == "fresh\n" and program.exit_code == 0, program
            result = await session.run(bomb, timeout=1)
            assert result.status in (Status.timeout, Status.oom), result
