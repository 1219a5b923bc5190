"""The warm pool and its sessions: the sandbox's public async API.

    async with SandboxPool(settings) as pool:
        async with pool.session() as s:
            r = await s.run("x = 1\\nx + 1", timeout=10)

Containers are started ahead with numpy and sympy imported, so a session is handed out from a
queue in microseconds. A container serves exactly one session and is destroyed on release; a
fresh one is started in the background to take its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from types import TracebackType

import docker
import docker.errors

from sandbox.container import ContainerGone, SandboxContainer
from sandbox.image import require_image
from sandbox.owner import reap_leftovers
from sandbox.result import ExecResult, Status
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)


class SandboxError(RuntimeError):
    """The sandbox cannot serve: no engine, no image, or no free container in time."""


class PoolExhausted(SandboxError):
    pass


class SandboxPool:
    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.id = uuid.uuid4().hex  # labels this pool's containers
        self._client: docker.DockerClient | None = None
        # a failed start is queued as its exception, so a waiter learns why at once
        self._ready: asyncio.Queue[SandboxContainer | Exception] = asyncio.Queue()
        self._in_use: set[SandboxContainer] = set()
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
        """Warm, starting and in-use container counts (for metrics and readiness)."""
        ready, in_use = self._ready.qsize(), len(self._in_use)
        return {"ready": ready, "starting": self._starting, "in_use": in_use}

    async def warm(self, timeout: float = 60.0) -> None:
        """Wait until the warm queue is full and no start or removal is under way, so a
        benchmark measures a quiet pool (also a readiness check)."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*self._tasks, return_exceptions=True)
            while self._ready.qsize() < self.settings.pool_size:
                self._started.clear()
                await self._started.wait()

    @contextlib.asynccontextmanager
    async def session(self, lazy: bool = False) -> AsyncIterator[Session]:
        """A session of one owner. `lazy` takes its container at the first `run`, so an owner
        that may never run code (an agent run that just answers) costs no container."""
        session = Session(self, None if lazy else await self.acquire())
        try:
            yield session
        finally:
            await asyncio.shield(session.close())

    async def acquire(self) -> SandboxContainer:
        """Take a warm container, waiting at most `acquire_timeout` for a free slot (at most
        `max_sessions` at once) and a started container; a replacement starts at once."""
        if self._closed or self._client is None:
            raise SandboxError("the pool is not open; use `async with SandboxPool(...)`")
        waiting_for = f"one of {self.settings.max_sessions} sessions to end"
        try:
            async with asyncio.timeout(self.settings.acquire_timeout):
                await self._slots.acquire()
                waiting_for = "a container to start"
                try:
                    if self.settings.pool_size == 0 or self._ready.qsize() + self._starting == 0:
                        self._spawn()
                    item = await self._ready.get()
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
        self._in_use.add(item)
        if self.settings.pool_size:
            self._spawn()
        return item

    def release(self, container: SandboxContainer) -> None:
        """Destroy a container that served a session; it is never handed out again."""
        if container in self._in_use:
            self._in_use.discard(container)
            self._slots.release()
        self._track(container.destroy())

    async def close(self) -> None:
        """Destroy every container. Starts in flight are awaited, not cancelled: a cancelled
        start could leave a created container that nobody knows about. Removals begun while
        closing (a session released meanwhile) are awaited too, so none outlives the pool."""
        self._closed = True
        doomed = list(self._in_use)
        self._in_use.clear()
        while not self._ready.empty():
            item = self._ready.get_nowait()
            if isinstance(item, SandboxContainer):
                doomed.append(item)
        for container in doomed:
            self._track(container.destroy())
        while self._tasks:
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

    def _track(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("a sandbox container could not be removed: %s", exc)


class Session:
    """One owner's interpreter: globals persist between `run` calls, like notebook cells.

    After a timeout, OOM kill or crash the interpreter is gone; the result says so and the next
    call transparently gets a fresh one.
    """

    def __init__(self, pool: SandboxPool, container: SandboxContainer | None) -> None:
        self._pool = pool
        self._container: SandboxContainer | None = container
        self._lock = asyncio.Lock()
        self.calls = 0

    async def run(self, code: str | bytes, timeout: float | None = None) -> ExecResult:
        settings = self._pool.settings
        text, reason = validate(code, settings.max_code)
        if text is None:
            return ExecResult(status=Status.rejected, error=reason)
        timeout = settings.timeout if timeout is None else timeout
        async with self._lock:
            self.calls += 1
            if self._container is None:
                self._container = await self._pool.acquire()
            container = self._container
            request = {"code": text, "max_output": settings.max_output}
            try:
                reply = await asyncio.wait_for(container.call(request), timeout)
            except TimeoutError:
                self._discard()
                return ExecResult(
                    status=Status.timeout,
                    error=f"timed out after {timeout:g} s; the sandbox was killed and its state "
                    "lost (the next call starts a fresh interpreter)",
                    duration_ms=timeout * 1000,
                )
            except ContainerGone:
                return await self._died(container)
            except asyncio.CancelledError:
                self._discard()  # the reply stream is out of step now
                raise
        result = ExecResult.model_validate(reply)
        if result.status is Status.oom:
            result.error = f"{result.error} (limit {settings.memory})"
        return result

    async def _died(self, container: SandboxContainer) -> ExecResult:
        state = await container.exit_state()
        self._discard()
        lost = "its state is lost (the next call starts a fresh interpreter)"
        if state.oom_killed:
            limit = self._pool.settings.memory
            return ExecResult(
                status=Status.oom, error=f"killed: the memory limit ({limit}) was exceeded; {lost}"
            )
        return ExecResult(
            status=Status.crashed, error=f"the interpreter exited (code {state.exit_code}); {lost}"
        )

    def _discard(self) -> None:
        if self._container is not None:
            self._pool.release(self._container)
            self._container = None

    async def close(self) -> None:
        async with self._lock:
            self._discard()


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
