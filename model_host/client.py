"""Async client for raw `/v1/completions` on any OpenAI-compatible server.

Raw completions, not chat: the agent continues partial assistant turns (after a tool output, a
hint, the early-stop text), which chat endpoints do not do reliably. The prompt is rendered
locally with the model's own chat template (`ChatTemplate`).

The transport is aiohttp: streaming a short completion through httpx cost ~3 ms of CPU per
request on this VM (its connection pool polls every idle socket per request), aiohttp ~0.5 ms,
and a code-running agent run makes three such calls (docs/benchmarks.md, Agent).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import aiohttp
from pydantic import BaseModel

from model_host.errors import ModelRequestError, ModelUnavailable
from model_host.profiles import Sampling
from model_host.template import ChatTemplate

__all__ = [
    "ChatTemplate",
    "Completion",
    "CompletionClient",
    "Delta",
    "ModelRequestError",
    "ModelUnavailable",
    "server_root",
]


class Delta(BaseModel):
    text: str


class Completion(BaseModel):
    text: str
    finish_reason: str | None  # "stop" | "length" | "abort" | None
    stop_reason: str | None  # the stop string that fired; None for EOS, length or unknown
    prompt_tokens: int
    completion_tokens: int
    usage_from_server: bool = True  # False: counted locally (the server sent no usage)
    first_token_s: float | None = None  # seconds from request to the first non-empty delta
    total_s: float = 0.0


def server_root(base_url: str) -> str:
    """`http://host:port` from either `http://host:port` or `http://host:port/v1`."""
    return base_url.rstrip("/").removesuffix("/v1")


_RETRY_STATUSES = {500, 502, 503, 504}
_JSON = {"Content-Type": "application/json"}
_BACKOFF_START = 0.5
_BACKOFF_CAP = 8.0


class CompletionClient:
    """Streams completions with stop strings, usage counts, retries and timeouts.

    `timeout` bounds connecting (retries included) and every wait for the next streamed chunk.
    `token_counter` counts tokens for servers that send no usage (e.g. ChatTemplate.count_tokens).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout: float = 120.0,
        retries: int = 3,
        token_counter: Callable[[str], int] | None = None,
    ) -> None:
        self.base_url = server_root(base_url)
        self.model = model
        self.timeout = timeout
        self.retries = retries
        self.token_counter = token_counter
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CompletionClient:
        self._http = aiohttp.ClientSession(
            self.base_url,
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=self.timeout),
            read_bufsize=1 << 22,  # an SSE line carries a whole chunk of text; a line is read whole
            raise_for_status=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("use the client as `async with CompletionClient(...) as client:`")
        return self._http

    async def models(self) -> list[str]:
        response = await self._send("GET", "/v1/models", None)
        try:
            data = json.loads(await response.read())
            return [entry["id"] for entry in data.get("data", [])]
        finally:
            response.release()

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: list[str],
        sampling: Sampling,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Completion:
        async for event in self.stream(
            prompt, max_tokens=max_tokens, stop=stop, sampling=sampling, seed=seed, extra=extra
        ):
            if isinstance(event, Completion):
                return event
        raise AssertionError("stream() always ends with a Completion")

    async def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: list[str],
        sampling: Sampling,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> AsyncGenerator[Delta | Completion, None]:
        """Text deltas as they arrive, then exactly one Completion.

        Stop strings are also checked here, so a server that ignores them or echoes them still
        yields text up to (not including) the first stop string, and reports which one fired.
        `extra` adds server-specific request fields (vLLM: ignore_eos, cache_salt, ...).
        """
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "stop": stop,
            "stream": True,
            "stream_options": {"include_usage": True},
            "add_special_tokens": False,  # the rendered template already has its special tokens
            **sampling.request_fields(),
        }
        if seed is not None:
            body["seed"] = seed
        body.update(extra or {})
        started = time.monotonic()
        response = await self._send("POST", "/v1/completions", body)
        scanner = _StopScanner(stop)
        finish_reason: str | None = None
        server_stop: object = None  # the server's own stop field: a string, a token id, absent
        usage: dict[str, int] | None = None
        chunks = 0
        first_token_s: float | None = None
        try:
            async for data in self._events(response, lambda: len(scanner.text)):
                if data.get("usage"):
                    usage = data["usage"]
                for choice in data.get("choices") or []:
                    piece = choice.get("text") or ""
                    if piece:
                        chunks += 1
                        if first_token_s is None:
                            first_token_s = time.monotonic() - started
                        emit = scanner.feed(piece)
                        if emit:
                            yield Delta(text=emit)
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                        server_stop = _first_present(
                            choice, "stop_reason", "matched_stop", "stopping_word"
                        )
                if scanner.fired is not None:
                    break  # the server did not stop at our stop string; we do
        finally:
            response.release()  # back to the pool when read to its end, else closed
        if finish_reason is None and scanner.fired is None:
            raise ModelUnavailable(
                f"the stream from {self.base_url} broke after {len(scanner.text)} characters "
                "(it ended without a finish reason); is the server still running?"
            )
        rest = scanner.flush()
        if rest:
            yield Delta(text=rest)
        stop_reason: str | None = None
        if scanner.fired is not None:
            finish_reason, stop_reason = "stop", scanner.fired
        elif isinstance(server_stop, str) and server_stop in stop:
            stop_reason = server_stop
        if usage is not None and scanner.fired is None:
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            completion_tokens = int(usage.get("completion_tokens", 0))
        elif self.token_counter is not None:
            prompt_tokens = self.token_counter(prompt)
            completion_tokens = self.token_counter(scanner.text)
        else:
            prompt_tokens, completion_tokens = 0, chunks
        yield Completion(
            text=scanner.text,
            finish_reason=finish_reason,
            stop_reason=stop_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_from_server=usage is not None and scanner.fired is None,
            first_token_s=first_token_s,
            total_s=time.monotonic() - started,
        )

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> aiohttp.ClientResponse:
        """Open a (streaming) response, retrying connection errors and 5xx with backoff.

        All attempts together stay within `timeout`; a caller never waits longer to learn that
        the server is unreachable.
        """
        deadline = time.monotonic() + self.timeout
        delay = _BACKOFF_START
        failure = ""
        for attempt in range(self.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout = aiohttp.ClientTimeout(
                total=None, connect=min(remaining, 10.0), sock_read=self.timeout
            )
            data = None if body is None else json.dumps(body).encode()
            headers = None if body is None else _JSON
            try:
                response = await self.http.request(
                    method, path, data=data, headers=headers, timeout=timeout
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status < 400:
                    return response
                try:
                    content = await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    content = b""
                finally:
                    response.release()
                if response.status not in _RETRY_STATUSES:
                    raise await self._refusal(response.status, content)
                failure = f"HTTP {response.status}: {_error_message(content)}"
            if attempt < self.retries:
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, _BACKOFF_CAP)
        raise ModelUnavailable(
            f"the model server at {self.base_url} did not answer {method} {path} "
            f"(last error: {failure or 'timed out'}). Start one with `startbox model serve`, or "
            "point STARTBOX_MODEL_BASE_URL / --base-url at a running OpenAI-compatible server."
        )

    async def _refusal(self, status: int, content: bytes) -> Exception:
        message = _error_message(content)
        if status == 404:
            try:
                served = await self.models()
            except (ModelUnavailable, ModelRequestError, ValueError):
                served = []
            if self.model not in served:
                names = ", ".join(served) or "nothing"
                return ModelUnavailable(
                    f"the server at {self.base_url} does not serve model {self.model!r} "
                    f"(it serves: {names}). Set STARTBOX_MODEL_SERVED_NAME / --served-name to "
                    "one of those, or serve this model."
                )
        return ModelRequestError(status, message)

    async def _events(
        self, response: aiohttp.ClientResponse, chars_so_far: Callable[[], int]
    ) -> AsyncIterator[dict[str, Any]]:
        """Parsed server-sent events until [DONE]; a broken stream becomes ModelUnavailable.

        The body is read to its end after [DONE]: a connection whose response was left unread
        is closed, and a new connection per model call costs more than the round's own work.
        """
        done = False
        try:
            async for line in response.content:
                if done or not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    continue
                data = json.loads(payload)
                if "error" in data and not data.get("choices"):
                    error = data["error"]
                    message = error.get("message", error) if isinstance(error, dict) else error
                    raise ModelRequestError(int(data.get("code") or 500), str(message))
                yield data
        except TimeoutError:  # aiohttp's read timeout is one too
            raise ModelUnavailable(
                f"the model server at {self.base_url} sent nothing for {self.timeout:.0f} s "
                f"mid-stream (after {chars_so_far()} characters); raise "
                "STARTBOX_MODEL_REQUEST_TIMEOUT if the server is just slow."
            ) from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(
                f"the stream from {self.base_url} broke after {chars_so_far()} characters "
                f"({type(exc).__name__}: {exc}); is the server still running?"
            ) from None


class _StopScanner:
    """Finds stop strings in streamed text and holds back a tail that may begin one."""

    def __init__(self, stop: list[str]) -> None:
        self.stop = [s for s in stop if s]
        self._text = ""
        self._emitted = 0
        self.fired: str | None = None

    @property
    def text(self) -> str:
        return self._text

    def feed(self, piece: str) -> str:
        """Take a piece of text; return what can safely be shown now."""
        if self.fired is not None:
            return ""
        longest = max((len(s) for s in self.stop), default=0)
        search_from = max(0, len(self._text) - longest + 1)
        self._text += piece
        hits = [(i, s) for s in self.stop if (i := self._text.find(s, search_from)) >= 0]
        if hits:
            index, self.fired = min(hits)
            self._text = self._text[:index]
            return self._take(len(self._text))
        return self._take(len(self._text) - self._held_back())

    def flush(self) -> str:
        return self._take(len(self._text))

    def _held_back(self) -> int:
        longest = max((len(s) for s in self.stop), default=1)
        for size in range(min(len(self._text), longest - 1), 0, -1):
            if any(s.startswith(self._text[-size:]) for s in self.stop):
                return size
        return 0

    def _take(self, end: int) -> str:
        end = max(end, self._emitted)
        out, self._emitted = self._text[self._emitted : end], end
        return out


def _first_present(choice: dict[str, Any], *keys: str) -> object:
    for key in keys:
        if choice.get(key) is not None:
            return choice[key]
    return None


def _error_message(content: bytes) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")[:500]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)[:500]
