"""Code verdicts the graded code cannot forge.

A program runs in its own sandbox session and is only ever asked for data: the results of
calls (plain data, typed) or what it prints for a given stdin. Nothing it could compare
against (expected values, test code) ever enters its container, and whatever it writes back
(even a forged protocol reply) is only data that is then judged elsewhere. The programs of one
grader share a sandbox tenant, so their sessions reuse containers (reset in between: nothing
crosses) instead of starting one each:

- stdin/stdout tests: each input fed to the program run as a fresh process (the sandbox's
  `run_program`), its output compared here, token-wise with float tolerance, under a
  per-test time limit;
- call tests with expected values (APPS fn_name, LiveCodeBench functional, HumanEval+ with
  the canonical solution's results): compared here by type and value;
- tests that exist only as code (HumanEval `check`, MBPP asserts): the test code runs in a
  second, trusted container the program never touches, with the function under test replaced
  by a table of the program's recorded results; a call the table lacks is sent to the
  program's container and the test rerun, until the test passes or fails on data alone.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sandbox.pool import SandboxError, SandboxPool, Session
from sandbox.result import ExecResult
from workflows.datasets import CallTest, Problem
from workflows.judge import plain

CODEC = Path(plain.__file__).read_text(encoding="utf-8")
BATCH_CALLS = 16  # calls per sandbox request (results travel in one reply)
MAX_ROUNDS = 400  # reruns of a test harness that keeps asking for new calls

# Defined in the program's session before its code, helpers bound at definition so a program
# that defines its own `encode` still answers; it may redefine these (it only hurts itself).
CALLER = """
def _sb_calls(entry, requests, _encode=encode, _decode=decode, _NotPlain=NotPlain, _eval=eval):
    import json as _json, builtins as _b
    out = []
    for args, kwargs in (_decode(r) for r in _json.loads(requests)):
        try:
            value = _eval(entry)(*args, **kwargs)
            out.append({"value": _encode(value)})
        except _NotPlain as exc:
            out.append({"unplain": str(exc)})
        except BaseException as exc:
            name = type(exc).__name__
            out.append({"raise": name if isinstance(getattr(_b, name, None), type) else "Exception",
                        "message": str(exc)[:200]})
    return _json.dumps(out)
"""

# The trusted side: the test code against a table of recorded results.
HARNESS = """
import builtins as _b, json as _json, random as _random
_sb_table = {}
_sb_missing = []

class _SbMiss(BaseException):
    pass

def _sb_key(args, kwargs):
    return _json.dumps(encode([list(args), kwargs]), sort_keys=True)

def _sb_proxy(*args, **kwargs):
    key = _sb_key(args, kwargs)
    if key not in _sb_table:
        _sb_missing.append(key)
        raise _SbMiss(key)
    entry = _sb_table[key]
    if "value" in entry:
        return decode(entry["value"])
    if "raise" in entry:
        raise getattr(_b, entry["raise"], Exception)(entry.get("message", ""))
    raise TypeError(entry.get("unplain", "not plain data"))

def _sb_round(table, source, entry):
    global _sb_table
    _sb_table = _json.loads(table)
    _sb_missing.clear()
    _random.seed(0)
    space = {"__name__": "__main__"}
    verdict = "pass"
    space[entry] = _sb_proxy
    try:
        exec(compile(source, "<test>", "exec"), space)
        space[entry] = _sb_proxy
        if "check" in space and callable(space["check"]):
            space["check"](_sb_proxy)
    except _SbMiss:
        verdict = "missing"
    except AssertionError as exc:
        verdict = "fail: AssertionError " + str(exc)[:200]
    except BaseException as exc:
        verdict = "fail: " + type(exc).__name__ + ": " + str(exc)[:200]
    if _sb_missing:
        verdict = "missing"
    return _json.dumps({"verdict": verdict, "missing": _sb_missing[:8]})
"""


class Verdict(Exception):
    """The grading ended early with this outcome (raised inside, returned as a Grade)."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause, self.detail = cause, detail


@dataclass
class Outcome:
    correct: bool
    cause: str | None = None
    detail: str = ""


def reply_value(result: ExecResult, who: str) -> Any:
    """The JSON a helper returned as its last expression; a bad reply ends the grading."""
    if result.status == "timeout":
        raise Verdict("test_timeout", f"{who} timed out")
    if result.status != "ok":
        raise Verdict("wrong", f"{who}: {(result.error or result.status)[-400:]}")
    if result.truncated:
        raise Verdict("grader_error", f"{who}: the reply exceeded the sandbox output cap")
    try:
        return json.loads(ast.literal_eval(result.value or ""))
    except (ValueError, SyntaxError, TypeError):
        raise Verdict("wrong", f"{who} did not reply with data") from None


async def call(session: Session, code: str, timeout: float) -> ExecResult:
    """One sandbox call; sandbox failures and malformed replies are the grader's error."""
    try:
        return await session.run(code, timeout=timeout)
    except (SandboxError, ValidationError) as exc:
        raise Verdict("grader_error", f"sandbox: {exc}") from None


class Trusted:
    """A few long-lived sessions for trusted code only (test harnesses, reference solutions),
    shared by every problem: no candidate program ever runs in their containers. Each call is
    self-contained (it carries the whole table, or loads the reference), so any free session
    serves it and problems graded at once do not queue behind one container. Each call
    re-installs the helpers if the interpreter was replaced after a timeout. It also names
    the tenant the graded programs' own sessions share (that tenant's containers are
    recycled between programs; the trusted sessions have containers of their own)."""

    def __init__(self, pool: SandboxPool, size: int | None = None) -> None:
        self.pool = pool
        self.tenant = f"judge-{uuid.uuid4().hex}"
        # two (more containers cost this 2-core machine more than they add), and a quarter
        # of the pool's sessions at most, so graded programs always find room
        self._size = size or max(1, min(2, pool.settings.max_sessions // 4))
        self._idle: asyncio.Queue[Session] = asyncio.Queue()
        self._opened = 0
        self._stack = contextlib.AsyncExitStack()

    async def run(self, code: str, timeout: float) -> ExecResult:
        session = await self._take()
        try:
            ready = f"if '_sb_round' not in globals():\n    exec({CODEC + HARNESS + CALLER!r})\n"
            return await call(session, ready + code, timeout)
        finally:
            self._idle.put_nowait(session)

    async def _take(self) -> Session:
        if self._idle.empty() and self._opened < self._size:
            self._opened += 1
            try:
                return await self._stack.enter_async_context(self.pool.session())
            except BaseException:
                self._opened -= 1
                raise
        return await self._idle.get()

    def program_session(self) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session for one graded program: a recycled container of this grader's tenant."""
        return self.pool.session(tenant=self.tenant)

    async def close(self) -> None:
        await self._stack.aclose()
        self._idle = asyncio.Queue()
        self._opened = 0


async def start(session: Session, program: str, setup: str | None, timeout: float) -> None:
    """Codec and callers first, then the program itself (its own top level may fail)."""
    prelude = await call(session, CODEC + CALLER + (setup or ""), timeout)
    if prelude.status != "ok":
        raise Verdict("grader_error", f"the sandbox prelude failed: {prelude.error}")
    loaded = await call(session, program, timeout)
    if loaded.status == "timeout":
        raise Verdict("test_timeout", "the program's top level timed out")
    if loaded.status != "ok":
        raise Verdict(
            "wrong", f"the program failed to load: {(loaded.error or loaded.status)[-400:]}"
        )


async def results(
    session: Session, entry: str, requests: list[str], timeout: float, who: str = "the program"
) -> list[dict[str, Any]]:
    """The program's result entries for encoded [args, kwargs] requests, in order."""
    out: list[dict[str, Any]] = []
    for i in range(0, len(requests), BATCH_CALLS):
        batch = requests[i : i + BATCH_CALLS]
        code = f"_sb_calls({entry!r}, {json.dumps('[' + ','.join(batch) + ']')})"
        entries = reply_value(await call(session, code, timeout), who)
        if not isinstance(entries, list) or len(entries) != len(batch):
            raise Verdict(
                "wrong", f"{who} returned {type(entries).__name__}, not {len(batch)} results"
            )
        for item in entries:
            if not isinstance(item, dict) or not (
                {"value"} <= item.keys() or "raise" in item or "unplain" in item
            ):
                raise Verdict("wrong", f"{who} returned a malformed result")
            if "value" in item:
                try:
                    plain.decode(item["value"])
                except (plain.NotPlain, TypeError, ValueError):
                    raise Verdict("wrong", f"{who} returned data that does not decode") from None
        out.extend(entries)
    return out


# -- comparison, outside every sandbox ---------------------------------------------------------


def same(expected: Any, actual: Any, atol: float | None, loose: bool) -> bool:
    """By type and value: bool is not a number; ints and floats compare by value (floats within
    `atol` when given); with `loose` (expected values from JSON) a tuple equals a list."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if isinstance(expected, float) or isinstance(actual, float):
            if math.isnan(expected) or math.isnan(actual):
                return math.isnan(expected) and math.isnan(actual)
            return math.isclose(
                expected, actual, rel_tol=1e-9 if atol is None else 0.0, abs_tol=atol or 0.0
            )
        return expected == actual
    sequences = (list, tuple)
    if loose and isinstance(expected, sequences) and isinstance(actual, sequences):
        pass
    elif type(expected) is not type(actual):
        return False
    if isinstance(expected, list | tuple):
        return len(expected) == len(actual) and all(
            same(e, a, atol, loose) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(
            same(v, actual[k], atol, loose) for k, v in expected.items()
        )
    return bool(expected == actual)


def same_output(expected: str, actual: str, tolerance: float = 1e-6) -> bool:
    """Token-wise, whitespace-insensitive; numbers within `tolerance` (absolute or relative)."""
    want, got = expected.split(), actual.split()
    if len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        if w == g:
            continue
        try:
            a, b = float(w), float(g)
        except ValueError:
            return False
        if not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance):
            return False
    return True


# -- the three test forms ----------------------------------------------------------------------


def request(args: list[Any]) -> str:
    return plain.dumps([list(args), {}])


async def stdio_tests(trusted: Trusted, problem: Problem, program: str, timeout: float) -> Outcome:
    """Each test's input fed to the program as a fresh process; its output compared here."""
    source = f"{problem.setup}\n{program}" if problem.setup else program
    async with trusted.program_session() as session:
        for number, test in enumerate(problem.stdio, start=1):
            try:
                result = await session.run_program(source, stdin=test.input, timeout=timeout)
            except (SandboxError, ValidationError) as exc:
                raise Verdict("grader_error", f"sandbox: {exc}") from None
            if result.status == "timeout":
                return Outcome(False, "test_timeout", f"test {number}: over {timeout:g} s")
            if result.status != "ok":
                failure = result.stderr.strip() or result.error or result.status
                return Outcome(False, "wrong", f"test {number}: {failure[-400:]}")
            if result.truncated:
                return Outcome(False, "grader_error", f"test {number}: output over the sandbox cap")
            if not same_output(test.output, result.stdout):
                return Outcome(
                    False,
                    "wrong",
                    f"test {number}: expected {test.output[:80]!r}, got {result.stdout[:80]!r}",
                )
    return Outcome(True)


async def reference_results(
    trusted: Trusted, problem: Problem, requests: list[str], timeout: float
) -> list[dict[str, Any]]:
    """The reference solution's results: each batch loads it afresh in a trusted session."""
    source = f"{problem.setup or ''}\n{problem.reference_solution}"
    load = f"_sb_ref = {{'__name__': '__main__'}}\nexec({source!r}, _sb_ref)\n"
    entry = f"_sb_ref[{problem.entry_point!r}]"
    out: list[dict[str, Any]] = []
    for i in range(0, len(requests), BATCH_CALLS):
        batch = "[" + ",".join(requests[i : i + BATCH_CALLS]) + "]"
        result = await trusted.run(f"{load}_sb_calls({entry!r}, {json.dumps(batch)})", timeout)
        if result.status == "error":  # each call's own exceptions are results: this is the load
            raise Verdict("grader_error", f"the reference solution failed: {result.error}")
        out.extend(reply_value(result, "the reference solution"))
    return out


async def call_tests(trusted: Trusted, problem: Problem, program: str, timeout: float) -> Outcome:
    entry = problem.entry_point or ""
    requests = [request(t.args) for t in problem.calls]
    expected: list[Any]
    loose = problem.reference_solution is None  # expected values from the data's JSON
    if problem.reference_solution is not None:
        reference = await reference_results(trusted, problem, requests, timeout * 4)
        expected = [plain.decode(r["value"]) if "value" in r else r for r in reference]
    else:
        expected = [t.expected for t in problem.calls]
    async with trusted.program_session() as session:
        await start(session, program, problem.setup, timeout)
        got = await results(session, entry, requests, timeout)
    for number, (want, entry_result, test) in enumerate(
        zip(expected, got, problem.calls, strict=True), start=1
    ):
        if isinstance(want, dict) and "raise" in want and problem.reference_solution is not None:
            continue  # the reference itself raises on this input: not a test
        if "value" not in entry_result:
            return Outcome(
                False,
                "wrong",
                f"call {number} {_short(test)}: "
                f"{entry_result.get('raise') or entry_result.get('unplain')}",
            )
        value = plain.decode(entry_result["value"])
        if not same(want, value, problem.atol, loose):
            return Outcome(
                False,
                "wrong",
                f"call {number} {_short(test)}: expected {want!r:.80}, got {value!r:.80}",
            )
    return Outcome(True)


def _short(test: CallTest) -> str:
    return f"{test.args!r:.60}"


def literal_calls(source: str, name: str) -> list[str]:
    """Requests for every `name(<literals>)` in the test code: asked for before the first run."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
            try:
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
                key = plain.dumps([args, kwargs])
            except (ValueError, SyntaxError, TypeError, plain.NotPlain):
                continue
            if key not in found:
                found.append(key)
    return found


async def harness_tests(
    trusted: Trusted, problem: Problem, program: str, timeout: float
) -> Outcome:
    """HumanEval check(candidate) / MBPP asserts, run in a container of their own."""
    entry = problem.entry_point or ""
    source = f"{problem.setup or ''}\n{problem.prompt or ''}\n{problem.test or ''}\n"
    candidate_name = "candidate" if "def check(" in (problem.test or "") else entry
    async with trusted.program_session() as session:
        await start(session, program, problem.setup, timeout)
        table: dict[str, dict[str, Any]] = {}
        pending = literal_calls(problem.test or "", candidate_name)
        for _ in range(MAX_ROUNDS):
            got = await results(session, entry, pending, timeout) if pending else []
            table.update(zip(pending, got, strict=True))
            code = f"_sb_round({json.dumps(json.dumps(table))}, {source!r}, {entry!r})"
            report = reply_value(await trusted.run(code, timeout * 4), "the test harness")
            verdict = str(report.get("verdict", ""))
            if verdict == "pass":
                return Outcome(True)
            if verdict != "missing":
                return Outcome(False, "wrong", verdict.removeprefix("fail: ")[:500])
            pending = [k for k in report.get("missing", []) if k not in table]
            if not pending:
                raise Verdict("grader_error", "the test harness asked for a call it already has")
        raise Verdict("grader_error", f"the tests made over {MAX_ROUNDS} rounds of calls")


Form = Callable[[Trusted, Problem, str, float], Awaitable[Outcome]]


def form_of(problem: Problem) -> Form:
    """Which test form a code problem has; a problem with none is the grader's error."""
    if problem.stdio:
        return stdio_tests
    if problem.calls and problem.entry_point:
        return call_tests
    if problem.test and problem.entry_point:
        return harness_tests
    raise Verdict("grader_error", f"problem {problem.id} has no tests the code grader can run")


def program_of(problem: Problem, completion: str) -> str:
    """HumanEval completions continue the prompt (a full function simply redefines it)."""
    if problem.prompt and problem.test and "def check(" in problem.test:
        return f"{problem.prompt}{completion}\n"
    return completion


async def grade_program(
    trusted: Trusted, problem: Problem, completion: str, timeout: float
) -> Outcome:
    program = program_of(problem, completion)
    try:
        form = form_of(problem)
        outcome = await form(trusted, problem, program, timeout)
        if outcome.correct and problem.calls and problem.test and form is call_tests:
            return await harness_tests(trusted, problem, program, timeout)
        return outcome
    except Verdict as verdict:
        return Outcome(False, verdict.cause, verdict.detail)
