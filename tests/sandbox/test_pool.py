"""The pool's promises: fast hand-out, one owner per container, bounded waits, reaping."""

from __future__ import annotations

import asyncio
import sys
import textwrap

import docker
import pytest

from sandbox.owner import OWNER_LABEL, POOL_LABEL, list_sandboxes
from sandbox.pool import PoolExhausted, SandboxError, SandboxPool
from sandbox.settings import SandboxSettings


async def test_a_container_serves_one_session_only(pool: SandboxPool) -> None:
    async with pool.session() as first:
        await first.run("import socket\nname = socket.gethostname()")
        first_id = (await first.run("open('/proc/self/cgroup').read()")).value
    async with pool.session() as second:
        assert (await second.run("'name' in globals()")).value == "False"
        assert (await second.run("open('/proc/self/cgroup').read()")).value != first_id


async def test_exhausted_pool_waits_then_fails_clearly(small_pool: SandboxPool) -> None:
    async with small_pool.session():
        small_pool.settings.acquire_timeout = 0.5
        with pytest.raises(PoolExhausted, match="sessions to end"):
            async with small_pool.session():
                pass
    small_pool.settings.acquire_timeout = 120
    async with small_pool.session() as session:  # the slot came back
        assert (await session.run("3")).value == "3"


async def test_missing_image_names_the_fix() -> None:
    with pytest.raises(Exception, match="startbox sandbox build-image"):
        async with SandboxPool(SandboxSettings(image="startbox-sandbox:does-not-exist")):
            pass


OWNER_THAT_HOLDS_A_SESSION = textwrap.dedent(
    """
    import asyncio
    from sandbox.pool import SandboxPool
    from sandbox.settings import SandboxSettings

    async def main():
        async with SandboxPool(SandboxSettings(pool_size=1)) as pool:
            async with pool.session():
                print("holding", flush=True)
                await asyncio.sleep(600)

    asyncio.run(main())
    """
)


async def test_leftovers_of_a_killed_owner_are_reaped() -> None:
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER_THAT_HOLDS_A_SESSION, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert owner.stdout is not None
        assert await asyncio.wait_for(owner.stdout.readline(), 60) == b"holding\n"
    finally:
        owner.kill()  # SIGKILL: no cleanup code of the owner runs
        await asyncio.wait_for(owner.wait(), 10)
    client = docker.from_env()
    orphans = {
        c["Id"]
        for c in list_sandboxes(client)
        if c["Labels"][OWNER_LABEL].split(":")[1] == str(owner.pid)
    }
    assert orphans, "the killed owner should have left containers behind"
    async with SandboxPool(SandboxSettings(pool_size=0)) as pool:
        assert pool.reaped >= len(orphans)
    assert not orphans & {c["Id"] for c in list_sandboxes(client)}


async def test_a_lazy_session_takes_a_container_only_when_code_runs(pool: SandboxPool) -> None:
    async with pool.session(lazy=True) as session:
        before = pool.size["in_use"]
        assert (await session.run("1 + 1")).value == "2"
        assert pool.size["in_use"] == before + 1


async def test_a_session_released_while_the_pool_closes_goes_with_it() -> None:
    async with SandboxPool(SandboxSettings(pool_size=1)) as pool:
        container = await pool.acquire()  # starts a replacement, which close() waits for
        closing = asyncio.create_task(pool.close())
        await asyncio.sleep(0.05)  # close is under way
        pool.release(container)
        await closing
        left = [c for c in list_sandboxes(docker.from_env()) if c["Labels"][POOL_LABEL] == pool.id]
        assert left == []
        with pytest.raises(SandboxError, match="not open"):
            await pool.acquire()
