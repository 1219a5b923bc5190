"""A scripted OpenAI-compatible server on loopback: makes odd server behaviour reproducible.

Used only for what a real vLLM never does (ignoring stop strings, omitting usage, failing with a
503, dropping the connection mid-stream); everything else is tested against real vLLM.
"""

from __future__ import annotations

import asyncio
import json
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


class ScriptedServer:
    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
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
            reply = self.replies.pop(0) if self.replies else Reply(status=500)
            await self._reply(writer, reply)
        finally:
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.status != 200:
            payload = json.dumps({"error": {"message": "scripted failure"}}).encode()
            writer.write(
                f"HTTP/1.1 {reply.status} Error\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        for index, piece in enumerate(reply.pieces):
            if reply.drop_after is not None and index >= reply.drop_after:
                writer.transport.abort()
                return
            await self._event(writer, {"choices": [{"index": 0, "text": piece}]})
        final = {"index": 0, "text": "", "finish_reason": reply.finish_reason, **reply.extra_final}
        await self._event(writer, {"choices": [final]})
        if reply.usage is not None:
            await self._event(writer, {"choices": [], "usage": reply.usage})
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()

    @staticmethod
    async def _event(writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
        writer.write(f"data: {json.dumps(data)}\n\n".encode())
        await writer.drain()
