"""A scripted OpenAI-compatible server on loopback: for tests and benchmarks, never a default.

It stands in for a model where the model must cost nothing or behave exactly so. Two uses.
Odd server behaviour made reproducible (ignoring stop strings, omitting usage, a 503, a
dropped connection) for the client's tests. And deterministic model turns for the agent's
routing tests: `Reply(text=...)` is cut at the request's stop strings and `max_tokens` the way
vLLM cuts it (one whitespace-delimited word per token), with `stop_reason` and usage.

Benchmarks run it in a process of its own (`scripted_process`), as a real model server runs:
otherwise its work would land on the event loop being measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int = 200
    pieces: list[str] = field(default_factory=list)  # streamed texts
    finish_reason: str = "stop"
    extra_final: dict[str, Any] = field(default_factory=dict)  # e.g. {"stop_reason": "x"}
    usage: dict[str, int] | None = None
    drop_after: int | None = None  # close the connection after this many pieces
    text: str | None = None  # a model turn, cut like vLLM would (see `as_vllm`)
    die: bool = False  # with drop_after: the server stops listening too, as if killed

    def as_vllm(self, request: dict[str, Any]) -> Reply:
        """The turn cut at the first stop string or at max_tokens, whichever comes first."""
        assert self.text is not None
        stops, limit = request.get("stop") or [], int(request.get("max_tokens") or 1 << 30)
        hits = [(i, stop) for stop in stops if (i := self.text.find(stop)) >= 0]
        end, fired = min(hits) if hits else (len(self.text), None)
        pieces = WORD.findall(self.text[:end])
        finish = "stop"  # at a stop string, or EOS where the turn ends
        if len(pieces) > limit:
            pieces, finish, fired = pieces[:limit], "length", None
        tokens = len(WORD.findall(request.get("prompt", "")))
        usage = {
            "prompt_tokens": tokens,
            "completion_tokens": len(pieces),
            "total_tokens": tokens + len(pieces),
        }
        return Reply(
            pieces=pieces,
            finish_reason=finish,
            extra_final={"stop_reason": fired},
            usage=usage,
            drop_after=self.drop_after,
            die=self.die,
        )


WORD = re.compile(r"\s*\S+|\s+")


class ScriptedServer:
    def __init__(
        self,
        replies: list[Reply],
        default: Reply | Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self.replies = list(replies)
        # answers once the script is spent: a fixed reply, or one chosen from the request (so
        # concurrent runs each get their own next turn); None: HTTP 500
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._connections):  # idle keep-alive connections end with us
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serves requests on one connection until the client closes it (keep-alive, as vLLM's
        server does: a per-request connection would bill TCP set-up to every model call)."""
        self._connections.add(writer)
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (a cancelled run, or an idle connection closed)
        finally:
            self._connections.discard(writer)
            self._handlers.discard(handler)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answers one request; False when the connection must close."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = json.loads(await reader.readexactly(length)) if length else {}
        self.requests.append(body)
        if head.startswith(b"GET /v1/models"):
            await self._json(writer, 200, {"data": [{"id": "scripted", "object": "model"}]})
            return True
        reply = self.replies.pop(0) if self.replies else self._fallback(body)
        if reply.text is not None:
            reply = reply.as_vllm(body)
        return await self._reply(writer, reply)

    async def _reply(self, writer: asyncio.StreamWriter, reply: Reply) -> bool:
        if reply.status != 200:
            await self._json(writer, reply.status, {"error": {"message": "scripted failure"}})
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for index, piece in enumerate(reply.pieces):
            if reply.drop_after is not None and index >= reply.drop_after:
                if reply.die and self._server is not None:
                    self._server.close()  # nothing listens any more: connections are refused
                    for other in self._connections:
                        other.transport.abort()
                writer.transport.abort()
                return False
            await self._event(writer, {"choices": [{"index": 0, "text": piece}]})
        final = {"index": 0, "text": "", "finish_reason": reply.finish_reason, **reply.extra_final}
        await self._event(writer, {"choices": [final]})
        if reply.usage is not None:
            await self._event(writer, {"choices": [], "usage": reply.usage})
        await self._chunk(writer, b"data: [DONE]\n\n")
        await self._chunk(writer, b"")  # the last chunk: the response is complete
        return True

    def _fallback(self, request: dict[str, Any]) -> Reply:
        if self.default is None:
            return Reply(status=500)
        return self.default(request) if callable(self.default) else self.default

    @staticmethod
    async def _json(writer: asyncio.StreamWriter, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        writer.write(
            f"HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    @classmethod
    async def _event(cls, writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
        await cls._chunk(writer, f"data: {json.dumps(data)}\n\n".encode())

    @staticmethod
    async def _chunk(writer: asyncio.StreamWriter, payload: bytes) -> None:
        """One chunk of a chunked HTTP/1.1 body; an empty payload ends the body."""
        writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        await writer.drain()


Responder = Callable[[dict[str, Any]], Reply]


@contextlib.asynccontextmanager
async def scripted_process(responder: str, timeout: float = 60.0) -> AsyncIterator[str]:
    """A ScriptedServer in a child process answering every request with `responder`
    ("package.module:function", importable in the child); yields its base URL."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "model_host.scripted", responder, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(timeout):
            line = await child.stdout.readline()
        if not line:
            raise RuntimeError(f"the scripted server for {responder} exited before serving")
        yield line.decode().strip()
    finally:
        if child.returncode is None:
            child.terminate()
        try:
            await asyncio.wait_for(child.wait(), timeout)
        except TimeoutError:
            child.kill()
            await child.wait()


def load_responder(spec: str) -> Responder:
    module, _, name = spec.partition(":")
    responder: Responder = getattr(importlib.import_module(module), name)
    return responder


async def _serve(spec: str) -> None:
    async with ScriptedServer([], default=load_responder(spec)) as server:
        sys.stdout.write(server.base_url + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()  # until terminated


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sys.argv[1]))
