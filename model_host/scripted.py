"""A scripted OpenAI-compatible server on loopback: for tests and benchmarks, never a default.

It stands in for a model where the model must cost nothing or behave exactly so. Two uses.
Odd server behaviour made reproducible (ignoring stop strings, omitting usage, a 503, a
dropped connection) for the client's tests. And deterministic model turns for the agent's
routing tests: `Reply(text=...)` is cut at the request's stop strings and `max_tokens` the way
vLLM cuts it (one whitespace-delimited word per token), with `stop_reason` and usage.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
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
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode().split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            self.requests.append(body)
            if head.startswith(b"GET /v1/models"):
                await self._json(writer, 200, {"data": [{"id": "scripted", "object": "model"}]})
                return
            reply = self.replies.pop(0) if self.replies else self._fallback(body)
            if reply.text is not None:
                reply = reply.as_vllm(body)
            await self._reply(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (a cancelled run): nothing to answer
        finally:
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.status != 200:
            await self._json(writer, reply.status, {"error": {"message": "scripted failure"}})
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        for index, piece in enumerate(reply.pieces):
            if reply.drop_after is not None and index >= reply.drop_after:
                if reply.die and self._server is not None:
                    self._server.close()  # nothing listens any more: connections are refused
                writer.transport.abort()
                return
            await self._event(writer, {"choices": [{"index": 0, "text": piece}]})
        final = {"index": 0, "text": "", "finish_reason": reply.finish_reason, **reply.extra_final}
        await self._event(writer, {"choices": [final]})
        if reply.usage is not None:
            await self._event(writer, {"choices": [], "usage": reply.usage})
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()

    def _fallback(self, request: dict[str, Any]) -> Reply:
        if self.default is None:
            return Reply(status=500)
        return self.default(request) if callable(self.default) else self.default

    @staticmethod
    async def _json(writer: asyncio.StreamWriter, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        writer.write(
            f"HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    @staticmethod
    async def _event(writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
        writer.write(f"data: {json.dumps(data)}\n\n".encode())
        await writer.drain()
