"""The warm pool and its sessions: the sandbox's public async API.

    async with SandboxPool(settings) as pool:
        async with pool.session(tenant="key-1") as s:
            r = await s.run("x = 1\\nx + 1", timeout=10)

Containers are started ahead with the libraries imported, so a session is handed out from a queue
in microseconds. With no tenant a container serves exactly one session and is destroyed on
release. With a tenant, the released container is reset by its supervisor (every process killed,
every writable place wiped, a fresh interpreter forked) and kept for that tenant's next session
only; different tenants never share a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from types import TracebackType
from typing import Any

import docker
import docker.errors
from pydantic import ValidationError

from sandbox.container import SandboxContainer
from sandbox.errors import ContainerGone, PoolExhausted, SandboxError
from sandbox.image import require_image
from sandbox.owner import reap_leftovers
from sandbox.result import ExecResult, Status
from sandbox.settings import SandboxSettings

__all__ = ["PoolExhausted", "SandboxError", "SandboxPool", "Session"]

log = logging.getLogger(__name__)
RESET_TIMEOUT = 10.0
MALFORMED = "the sandbox's reply was malformed"


class SandboxPool:
    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.id = uuid.uuid4().hex  # labels this pool's containers
        self._client: docker.DockerClient | None = None
        # a failed start is queued as its exception, so a waiter learns why at once
        self._ready: asyncio.Queue[SandboxContainer | Exception] = asyncio.Queue()
        self._in_use: set[SandboxContainer] = set()
        self._idle: dict[str, list[tuple[float, SandboxContainer]]] = {}
        self._resetting: dict[str, int] = {}
        self._idle_changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = 0
        self._started = asyncio.Event()  # set whenever a container joins the warm queue
        self._slots = asyncio.Semaphore(self.settings.max_sessions)
        self._closed = False
        self.reaped = 0

    async def __aenter__(self) -> SandboxPool:
        try:
            client = await asyncio.to_thread(docker.from_env, timeout=60)
            await asyncio.to_thread(client.ping)
            self._client = client
        except docker.errors.DockerException as exc:
            raise SandboxError(
                f"no Docker engine answers ({exc}); start one (`sudo dockerd &` or "
                "`systemctl start docker`) or run `make demo`, which sets it up"
            ) from exc
        await asyncio.to_thread(require_image, self._client, self.settings.image)
        self.reaped = await asyncio.to_thread(reap_leftovers, self._client)
        for _ in range(self.settings.pool_size):
            self._spawn()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def size(self) -> dict[str, int]:
        """Warm, starting, in-use and idle (kept for a tenant) container counts."""
        ready, in_use = self._ready.qsize(), len(self._in_use)
        idle = sum(len(kept) for kept in self._idle.values())
        return {"ready": ready, "starting": self._starting, "in_use": in_use, "idle": idle}

    async def warm(self, timeout: float = 600.0) -> None:
        """Wait until the warm queue is full and no start, reset or removal is under way, so a
        benchmark measures a quiet pool (also a readiness check)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            while self._ready.qsize() < self.settings.pool_size:
                self._started.clear()
                await self._started.wait()

    @contextlib.asynccontextmanager
    async def session(
        self, tenant: str | None = None, *, lazy: bool = False
    ) -> AsyncIterator[Session]:
        """A session of one owner. With a `tenant` (an API key, a batch job, a conversation's
        owner) the container may have served that tenant before, reset in between; never
        another tenant's. `lazy` takes the container at the first call, so an owner that may
        never run code costs none."""
        session = Session(self, tenant)
        if not lazy:
            await session.attach()
        try:
            yield session
        finally:
            await asyncio.shield(session.close())

    async def acquire(self, tenant: str | None = None) -> SandboxContainer:
        """A container for `tenant`: its own reset one if there is (or soon will be) one, else a
        warm one. Waits at most `acquire_timeout` for a slot (at most `max_sessions` at once)
        and a container, then raises `PoolExhausted`."""
        if self._closed or self._client is None:
            raise SandboxError("the pool is not open; use `async with SandboxPool(...)`")
        waiting_for = f"one of {self.settings.max_sessions} sessions to end"
        try:
            async with asyncio.timeout(self.settings.acquire_timeout):
                await self._slots.acquire()
                waiting_for = "a container to start"
                try:
                    item = await self._take(tenant)
                except BaseException:
                    self._slots.release()
                    raise
        except TimeoutError:
            raise PoolExhausted(
                f"no sandbox became free within {self.settings.acquire_timeout:g} s while "
                f"waiting for {waiting_for}; raise STARTBOX_SANDBOX_MAX_SESSIONS, "
                "STARTBOX_SANDBOX_POOL_SIZE or STARTBOX_SANDBOX_ACQUIRE_TIMEOUT"
            ) from None
        if isinstance(item, Exception):
            self._slots.release()
            raise SandboxError(f"a sandbox container failed to start: {item}") from item
        if self._closed:  # closed while this caller waited: close() no longer sees the item
            self._slots.release()
            self._track(item.destroy())
            raise SandboxError("the sandbox pool closed while waiting for a container")
        item.tenant = tenant
        self._in_use.add(item)
        return item

    async def _take(self, tenant: str | None) -> SandboxContainer | Exception:
        if tenant is not None and (recycled := await self._take_idle(tenant)) is not None:
            return recycled
        if self.settings.pool_size == 0 or self._ready.qsize() + self._starting == 0:
            self._spawn()
        item = await self._ready.get()
        if self.settings.pool_size and not isinstance(item, Exception):
            self._spawn()
        return item

    async def _take_idle(self, tenant: str) -> SandboxContainer | None:
        """The tenant's reset container; waits for a reset under way rather than start anew."""
        async with self._idle_changed:
            while True:
                self._evict_expired()
                if kept := self._idle.get(tenant):
                    return kept.pop()[1]
                if not self._resetting.get(tenant):
                    return None
                await self._idle_changed.wait()

    def release(self, container: SandboxContainer, *, reusable: bool = False) -> None:
        """End a session's hold. A healthy container of a tenant is reset and kept for that
        tenant; any other is destroyed and never handed out again."""
        if container in self._in_use:
            self._in_use.discard(container)
            self._slots.release()
        tenant = container.tenant
        if reusable and tenant is not None and not self._closed and self.settings.max_idle:
            self._resetting[tenant] = self._resetting.get(tenant, 0) + 1
            self._track(self._recycle(container, tenant))
        else:
            self._track(container.destroy())

    async def _recycle(self, container: SandboxContainer, tenant: str) -> None:
        try:
            reply = await asyncio.wait_for(container.call({"op": "reset"}), RESET_TIMEOUT)
            kept = reply.get("status") == "ok" and not self._closed
            if not kept:
                log.info("sandbox container not recycled: %s", reply.get("error"))
        except (ContainerGone, TimeoutError) as exc:
            log.info("sandbox container not recycled: %s", exc)
            kept = False
        async with self._idle_changed:
            self._resetting[tenant] -= 1
            if kept and self.size["idle"] < self.settings.max_idle:
                self._idle.setdefault(tenant, []).append((time.monotonic(), container))
            else:
                self._track(container.destroy())
            self._idle_changed.notify_all()

    def _evict_expired(self) -> None:
        horizon = time.monotonic() - self.settings.idle_ttl
        for tenant, kept in list(self._idle.items()):
            for entry in [entry for entry in kept if entry[0] < horizon]:
                kept.remove(entry)
                self._track(entry[1].destroy())
            if not kept:
                del self._idle[tenant]

    async def close(self) -> None:
        """Destroy every container. Starts and resets in flight are awaited, not cancelled: a
        cancelled start could leave a created container that nobody knows about. Removals
        begun while closing (a session released meanwhile) are awaited too, so none outlives
        the pool."""
        self._closed = True
        doomed = list(self._in_use)
        self._in_use.clear()
        while not self._ready.empty():
            item = self._ready.get_nowait()
            if isinstance(item, SandboxContainer):
                doomed.append(item)
        while True:
            for kept in self._idle.values():  # a reset finishing meanwhile may add one
                doomed += [container for _, container in kept]
            self._idle.clear()
            for container in doomed:
                self._track(container.destroy())
            doomed = []
            if not self._tasks:
                return
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self) -> None:
        if self._closed:
            return
        self._starting += 1
        self._track(self._start_one())

    async def _start_one(self) -> None:
        assert self._client is not None
        try:
            container = await SandboxContainer.start(self._client, self.settings, self.id)
        except Exception as exc:
            log.warning("sandbox container failed to start: %s", exc)
            self._ready.put_nowait(exc)
            return
        finally:
            self._starting -= 1
        if self._closed:
            await container.destroy()
        else:
            self._ready.put_nowait(container)
            self._started.set()

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("a sandbox container could not be removed: %s", exc)


class Session:
    """One owner's interpreter: globals persist between `run` calls, like notebook cells.

    After a timeout, OOM or crash the interpreter is gone; the result says so and the next call
    transparently gets a fresh one (forked in milliseconds by the same container's supervisor).
    """

    def __init__(self, pool: SandboxPool, tenant: str | None = None) -> None:
        self._pool = pool
        self.tenant = tenant
        self._container: SandboxContainer | None = None
        self._lock = asyncio.Lock()
        self._waited_ms = 0.0  # waiting for a container, reported by the next call
        self.calls = 0

    async def attach(self) -> None:
        """Take this session's container now (a lazy session does so at its first call)."""
        if self._container is None:
            started = time.perf_counter()
            self._container = await self._pool.acquire(self.tenant)
            self._waited_ms += (time.perf_counter() - started) * 1000

    async def run(
        self, code: str | bytes, timeout: float | None = None, stdin: str | None = None
    ) -> ExecResult:
        """Run a cell in the session's interpreter; `stdin` is what input() and sys.stdin read
        (end of file when None)."""
        return await self._call("run", code, timeout, stdin)

    async def run_program(
        self, code: str | bytes, stdin: str | None = None, timeout: float | None = None
    ) -> ExecResult:
        """Run `code` as a whole program in a fresh process (its own globals, `__name__ ==
        "__main__"`, no last-expression value) reading `stdin`; `exit_code` says how it ended.
        The session's interpreter and its state are untouched."""
        return await self._call("program", code, timeout, stdin)

    async def _call(
        self, op: str, code: str | bytes, timeout: float | None, stdin: str | None
    ) -> ExecResult:
        settings = self._pool.settings
        text, reason = validate(code, settings.max_code)
        if text is None:
            return ExecResult(status=Status.rejected, error=reason)
        if (
            stdin is not None
            and len(stdin.encode("utf-8", "backslashreplace")) > settings.max_stdin
        ):
            return ExecResult(
                status=Status.rejected, error=f"stdin is over the {settings.max_stdin}-byte limit"
            )
        timeout = settings.timeout if timeout is None else timeout
        async with self._lock:
            self.calls += 1
            await self.attach()
            container = self._container
            assert container is not None
            waited, self._waited_ms = self._waited_ms, 0.0
            request = {
                "op": op,
                "code": text,
                "stdin": stdin,
                "timeout": timeout,
                "max_output": settings.max_output,
                "max_images": settings.max_images,
                "max_image_bytes": settings.max_image_bytes,
            }
            try:
                reply = await asyncio.wait_for(container.call(request), timeout + settings.grace)
            except TimeoutError:  # the supervisor itself did not answer: drop the container
                self._discard()
                return ExecResult(
                    status=Status.timeout,
                    error=f"timed out after {timeout:g} s; the sandbox was killed and its state "
                    "lost (the next call starts a fresh interpreter)",
                    duration_ms=(timeout + settings.grace) * 1000,
                    wait_ms=waited,
                )
            except ContainerGone:
                return await self._died(container, waited)
            except asyncio.CancelledError:
                self._discard()  # the reply stream is out of step now
                raise
            result = to_result(reply)
            if reply.get("replace") is True or (result.error or "").startswith(MALFORMED):
                self._discard()  # out of protocol, or its supervisor says it cannot go on
        result.wait_ms = waited
        if result.status is Status.oom and result.error and settings.memory not in result.error:
            result.error = f"{result.error} (limit {settings.memory})"
        return result

    async def _died(self, container: SandboxContainer, waited: float) -> ExecResult:
        state = await container.exit_state()
        self._discard()
        lost = "its state is lost (the next call starts a fresh interpreter)"
        if state.oom_killed:
            limit = self._pool.settings.memory
            return ExecResult(
                status=Status.oom,
                error=f"killed: the memory limit ({limit}) was exceeded; {lost}",
                wait_ms=waited,
            )
        return ExecResult(
            status=Status.crashed,
            error=f"the sandbox exited (code {state.exit_code}); {lost}",
            wait_ms=waited,
        )

    def _discard(self, reusable: bool = False) -> None:
        if self._container is not None:
            self._pool.release(self._container, reusable=reusable)
            self._container = None

    async def close(self) -> None:
        async with self._lock:
            self._discard(reusable=True)


def to_result(reply: dict[str, Any]) -> ExecResult:
    """The supervisor's reply as a result; a malformed one is `crashed` with the first reason,
    never an exception out of `Session.run`."""
    try:
        return ExecResult.model_validate(reply)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return ExecResult(status=Status.crashed, error=f"{MALFORMED} ({where}: {first['msg']})")


def validate(code: str | bytes, max_bytes: int) -> tuple[str | None, str]:
    """The code as text, or None and the reason it is refused."""
    if isinstance(code, bytes):
        try:
            code = code.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"code is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return None, f"code is not valid Unicode ({exc.reason} at index {exc.start})"
    if not code.strip():
        return None, "code is empty"
    if size > max_bytes:
        return None, f"code is {size} bytes, over the {max_bytes}-byte limit"
    return code, ""
