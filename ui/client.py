"""A small synchronous client of the startbox REST API, with a resumable Server-Sent Events reader.

Synchronous because a Streamlit script is. The SSE parser is our own (about 30 lines over
`httpx`'s `iter_lines`): the stream is simple, and resuming with `Last-Event-ID` after a dropped
connection is logic a library would not do for us anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

READ_TIMEOUT = 60.0  # the API pings every 15 s while a run is quiet, so 60 s of silence is a fault
RECONNECTS = 5  # dropped connections in a row before giving up on a stream


class ApiError(Exception):
    """A failed API call, worded so the user knows what to do about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class SseMessage:
    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class SseParser:
    """Turns the lines of a text/event-stream into messages (the WHATWG rules we need)."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> SseMessage | None:
        """One line in; a message out when a blank line ends one, else None."""
        if not line:
            message = None
            if self._data:
                message = SseMessage(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return message
        if line.startswith(":"):  # a comment: the server's keep-alive ping
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


class ApiClient:
    """One API base URL and key; use it as a context manager so the connection pool closes."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"x-api-key": api_key} if api_key else {}
        # trust_env=False: no proxy from the environment; requests go to base_url and nowhere else
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")

    def models(self) -> list[str]:
        return [model["id"] for model in self._call("GET", "/v1/models")["data"]]

    def kinds(self) -> dict[str, str]:
        """Problem kinds the API serves (name -> summary), from GET /v1/models."""
        data = self._call("GET", "/v1/models")["data"]
        return dict(data[0].get("kinds") or {}) if data else {}

    def run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/runs/{run_id}")

    def threads(self, limit: int = 20) -> list[dict[str, Any]]:
        """The caller's conversations, newest first (the API lists only this key's)."""
        return self._call("GET", "/v1/threads", params={"limit": limit})["threads"]

    def thread(self, thread_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/threads/{thread_id}")

    def create_thread(self, title: str | None = None) -> str:
        return self._call("POST", "/v1/threads", json={"title": title})["id"]

    def ask(self, thread_id: str, question: str, options: dict[str, object]) -> str:
        """One turn of the conversation; returns its run id (events as any run's)."""
        body = {"question": question, **options}
        return self._call("POST", f"/v1/threads/{thread_id}/runs", json=body)["id"]

    def delete_thread(self, thread_id: str) -> None:
        """Forget the conversation and release its kernel (its runs stay readable by id)."""
        self._call("DELETE", f"/v1/threads/{thread_id}")

    def fork(self, thread_id: str, turn: int) -> str:
        """A new conversation holding turns 1..turn; returns its id."""
        return self._call("POST", f"/v1/threads/{thread_id}/fork", json={"turn": turn})["id"]

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/runs/{run_id}/cancel")

    def events(self, run_id: str, after: int = 0, deadline: float = 1800.0) -> Iterator[dict]:
        """The run's events after seq `after`, live, up to and including run_finished.

        A dropped connection is resumed with Last-Event-ID (no event is lost or repeated);
        `deadline` seconds bound the whole follow, keep-alive pings included.
        """
        give_up = time.monotonic() + deadline
        last, failures = after, 0
        while True:
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                raise ApiError(
                    f"stopped following run {run_id} after {deadline:g} s; it goes on in the "
                    "API: reload the page to follow it again"
                )
            timeout = httpx.Timeout(self.timeout, read=min(READ_TIMEOUT, remaining))
            try:
                with self._http.stream(
                    "GET",
                    f"/v1/runs/{run_id}/events",
                    headers={"Last-Event-ID": str(last), "Accept": "text/event-stream"},
                    timeout=timeout,
                ) as response:
                    if response.is_error:
                        response.read()
                        self._raise_for(response)
                    parser = SseParser()
                    for line in response.iter_lines():
                        message = parser.feed(line)
                        if message is None:
                            if time.monotonic() > give_up:
                                break  # only pings for too long: the top of the loop says so
                            continue
                        event = json.loads(message.data)
                        if int(event["seq"]) <= last:
                            continue  # already seen: a resumed stream must not repeat it
                        last, failures = int(event["seq"]), 0
                        yield event
                        if event["type"] == "run_finished":
                            return
                failure = "the stream ended before run_finished"
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > give_up:
                continue
            failures += 1
            if failures > RECONNECTS:
                raise ApiError(
                    f"lost the event stream of run {run_id} ({failure}) {failures} times in a "
                    f"row; check that the API at {self.base_url} is up, then reopen the run"
                )
            time.sleep(min(0.25 * 2**failures, 4.0, max(give_up - time.monotonic(), 0)))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                f"the API at {self.base_url} did not answer within {self.timeout:g} s; check "
                "that it is not overloaded, or raise STARTBOX_UI_TIMEOUT"
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach the startbox API at {self.base_url} ({type(exc).__name__}: "
                f"{exc}): start it with `startbox api`, or point --api-url / "
                "STARTBOX_UI_API_URL at it"
            ) from None
        if response.is_error:
            self._raise_for(response)
        return response.json() if response.content else None  # 204 has no body

    def _raise_for(self, response: httpx.Response) -> None:
        code = response.status_code
        detail = _detail(response)
        if code in (401, 403):
            raise ApiError(
                f"the API refused the key (HTTP {code}: {detail}): set --api-key or "
                "STARTBOX_UI_API_KEY to one of the server's STARTBOX_API_KEYS",
                code,
            )
        if code == 429:
            wait = response.headers.get("Retry-After", "a few")
            raise ApiError(f"the API is busy ({detail}): try again in {wait} s", code)
        if code >= 500:
            raise ApiError(f"the API failed (HTTP {code}: {detail}); see its log", code)
        raise ApiError(f"{detail} (HTTP {code})", code)


def _detail(response: httpx.Response) -> str:
    """FastAPI's `detail`: a message, or a list of validation errors made readable."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text.strip() or response.reason_phrase
    if isinstance(detail, list):  # 422: [{"loc": ["body", "field"], "msg": "..."}]
        return "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', [])[1:]) or 'body'}: {error.get('msg')}"
            for error in detail
        )
    return str(detail)
