"""The UI's API client: SSE parsing, resuming a dropped stream, errors that name the fix.

Faults a real server will not produce on demand (a connection cut mid-stream, a 429) come from
httpx's MockTransport (no request leaves the process); the happy paths run against the real
API in test_app.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.ui.conftest import free_port
from ui.client import ApiClient, ApiError, SseParser

LOOPBACK = "http://127.0.0.1:9"  # only a label for MockTransport: nothing is sent


def sse(*events: dict) -> bytes:
    body = ": ping\r\n\r\n"  # sse-starlette's keep-alive comment
    for event in events:
        body += f"id: {event['seq']}\r\nevent: {event['type']}\r\ndata: {json.dumps(event)}\r\n\r\n"
    return body.encode()


def event(seq: int, kind: str = "thinking_delta") -> dict:
    return {"type": kind, "seq": seq, "run_id": "r", "ts": 0.0, "text": f"t{seq}"}


def test_parser_follows_the_event_stream_rules() -> None:
    parser = SseParser()
    lines = ["id: 7", "event: code", 'data: {"a":', "data: 1}", "", ": comment", "", "retry: 5"]
    messages = [m for m in map(parser.feed, lines) if m is not None]
    assert len(messages) == 1
    assert (messages[0].id, messages[0].event, messages[0].data) == ("7", "code", '{"a":\n1}')
    assert parser.feed("data:x") is None and parser.feed("").data == "x"  # type: ignore[union-attr]


class Dropping(httpx.SyncByteStream):
    """Sends some bytes, then fails like a connection cut by the network."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset")


def test_a_dropped_stream_resumes_after_the_last_event() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        last = request.headers["Last-Event-ID"]
        seen.append(last)
        if last == "0":
            return httpx.Response(200, stream=Dropping(sse(event(1), event(2))))
        return httpx.Response(200, content=sse(event(3), event(4, "run_finished")))

    with ApiClient(LOOPBACK, transport=httpx.MockTransport(handler)) as api:
        got = [e["seq"] for e in api.events("r")]
    assert got == [1, 2, 3, 4] and seen == ["0", "2"]


def test_a_stream_that_keeps_failing_gives_up_with_advice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ui.client.time.sleep", lambda seconds: None)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(event(1)))  # ends without run_finished

    with (
        ApiClient(LOOPBACK, transport=httpx.MockTransport(handler)) as api,
        pytest.raises(ApiError, match=r"lost the event stream .* is up, then reopen the run"),
    ):
        list(api.events("r"))


def test_following_stops_at_the_deadline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b": ping\r\n\r\n" * 3)

    with (
        ApiClient(LOOPBACK, transport=httpx.MockTransport(handler)) as api,
        pytest.raises(ApiError, match=r"stopped following run r .* reload the page"),
    ):
        list(api.events("r", deadline=0.01))


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (401, {"detail": "missing key"}, {}, "STARTBOX_UI_API_KEY to one of the server's"),
        (429, {"detail": "3 runs at once"}, {"Retry-After": "5"}, "try again in 5 s"),
        (422, {"detail": [{"loc": ["body", "thinking_budget"], "msg": "must be >= 0"}]}, {},
         "thinking_budget: must be >= 0 (HTTP 422)"),
        (404, {"detail": "no run with id 'x'"}, {}, "no run with id 'x' (HTTP 404)"),
        (500, {"detail": "boom"}, {}, "the API failed (HTTP 500: boom); see its log"),
    ],
)  # fmt: skip
def test_http_errors_say_what_to_do(
    status: int, body: dict, headers: dict[str, str], expected: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    transport = httpx.MockTransport(handler)
    with ApiClient(LOOPBACK, transport=transport) as api, pytest.raises(ApiError) as err:
        api.ask("t1", "q", {"thinking_budget": -1})
    assert expected in str(err.value) and err.value.status == status


def test_a_turn_is_asked_in_its_thread_with_the_key() -> None:
    calls: list[tuple[str, str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, json.loads(request.content)))
        assert request.headers["x-api-key"] == "k"
        return httpx.Response(201, json={"id": "r1", "status": "running", "thread_id": "t1",
                                         "turn": 2})  # fmt: skip

    with ApiClient(LOOPBACK + "/", "k", transport=httpx.MockTransport(handler)) as api:
        assert api.ask("t1", "and n = 100?", {"thinking": False, "answer_budget": 64}) == "r1"
    body = {"question": "and n = 100?", "thinking": False, "answer_budget": 64}
    assert calls == [("POST", "/v1/threads/t1/runs", body)]


def test_an_api_that_is_not_there_is_named_with_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ApiClient(url, timeout=2) as api, pytest.raises(ApiError) as err:
        api.health()
    message = str(err.value)
    assert f"cannot reach the startbox API at {url}" in message
    assert "startbox api" in message and "STARTBOX_UI_API_URL" in message
