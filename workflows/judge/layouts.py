"""Benchmark layouts, recognised by their fields: what the question, the reference and the tests
of a row are in each known benchmark file.

Guessing one field name at a time reads `9 (apples)` as asdiv's answer, the index `2` as
mmlu_stem's, a Python list as olympiadbench's. Each layout here is the rule one benchmark's
rows follow, so its reference is read the way its authors meant; a row whose reference does not
read under its layout is a bad row, never a problem graded against a wrong answer.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import pickle
import random
import re
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agent.answer import last_boxed

LETTERS = string.ascii_uppercase


class RowError(ValueError):
    """This row cannot be read under its layout; the message says what is wrong."""


class CallTest(BaseModel):
    """Call the entry point with `args`; `expected` is the plain-data result it must return
    (None with `expected_from_reference`: the reference solution's result decides)."""

    args: list[Any]
    expected: Any = None


class StdioTest(BaseModel):
    input: str
    output: str


class Fields(BaseModel):
    """What a layout reads from one row."""

    kind: str
    question: str
    reference: str | None = None
    options: list[str] | None = None
    prompt: str | None = None  # code: the stub a completion continues (HumanEval)
    test: str | None = None  # code: test code run against the candidate (check(), asserts)
    setup: str | None = None  # code: test_setup_code / imports run before the tests
    entry_point: str | None = None  # code: the function (or Solution method) under test
    calls: list[CallTest] = []
    stdio: list[StdioTest] = []
    reference_solution: str | None = None  # code: gives expected values the data lacks
    atol: float | None = None


@dataclass(frozen=True)
class Layout:
    name: str
    source: str  # where the layout comes from, for the batch header
    fields: frozenset[str]  # all present: this layout
    read: Callable[[dict[str, Any], str], Fields]  # (row, default kind) -> fields
    absent: frozenset[str] = field(default_factory=frozenset)  # none present


def text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowError(f"no {name!r}")
    return str(value).strip()


def literal(value: Any, name: str) -> Any:
    """A field stored as a Python literal in a string ("['a', 'b']"), or already parsed."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise RowError(f"{name!r} is not a Python literal: {value[:60]!r}") from None


def number(value: Any, name: str) -> str:
    """A numeric reference as its shortest exact spelling (27.0 -> 27)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RowError(f"{name!r} is not a number: {value!r}")
    try:
        as_float = float(str(value).replace(",", ""))
    except ValueError:
        raise RowError(f"{name!r} is not a number: {value!r}") from None
    return str(int(as_float)) if as_float.is_integer() else repr(as_float)


def lettered(options: list[str]) -> str:
    return "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))


def letter(value: Any, options: int, name: str) -> str:
    """A letter reference (`C`, `(C)`, `C. {x|...}`) or a 0-based index; checked against the
    number of options when known."""
    if isinstance(value, int) and not isinstance(value, bool):
        found = LETTERS[value] if 0 <= value < len(LETTERS) else None
    else:
        match = re.match(r"^\s*\(?([A-Z])\b", str(value))
        found = match.group(1) if match else None
    if found is None or (options and LETTERS.index(found) >= options):
        raise RowError(f"{name!r} is not an option letter: {value!r}")
    return found


def strip_math(value: str) -> str:
    value = value.strip()
    return value[1:-1].strip() if len(value) > 1 and value[0] == value[-1] == "$" else value


# -- math layouts -----------------------------------------------------------------------------


def math_boxed_solution(row: dict[str, Any], kind: str) -> Fields:
    """MATH / Minerva: the answer is the last \\boxed{} of the solution (if no `answer`)."""
    question = text(row, "problem")
    answer = row.get("answer")
    if answer is not None and str(answer).strip():
        return Fields(kind="math", question=question, reference=str(answer).strip())
    boxed = last_boxed(text(row, "solution"))
    if boxed is None:
        raise RowError("the solution has no \\boxed{} answer")
    return Fields(kind="math", question=question, reference=boxed)


def gsm8k(row: dict[str, Any], kind: str) -> Fields:
    worked = text(row, "answer")
    if "####" not in worked:
        raise RowError("the answer has no '#### n' line")
    reference = worked.rsplit("####", 1)[1].strip().replace(",", "")
    return Fields(kind="math", question=text(row, "question"), reference=reference)


def asdiv(row: dict[str, Any], kind: str) -> Fields:
    """ASDiv: body + question; `9 (apples)` means 9; `3:4` or `2; 5` stay."""
    reference = re.sub(r"\s*\([^()]*\)\s*$", "", text(row, "answer")).strip()
    return Fields(
        kind="math", question=f"{text(row, 'body')} {text(row, 'question')}", reference=reference
    )


def svamp(row: dict[str, Any], kind: str) -> Fields:
    question = f"{text(row, 'Body')} {text(row, 'Question')}"
    return Fields(kind="math", question=question, reference=number(row.get("Answer"), "Answer"))


def mawps(row: dict[str, Any], kind: str) -> Fields:
    return Fields(
        kind="math", question=text(row, "input"), reference=number(row.get("target"), "target")
    )


def olympiadbench(row: dict[str, Any], kind: str) -> Fields:
    answers = literal(row.get("final_answer"), "final_answer")
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise RowError(f"'final_answer' is not a list of answers: {answers!r}")
    question = text(row, "question")
    if context := row.get("context"):
        question = f"{str(context).strip()}\n\n{question}"
    return Fields(kind="math", question=question, reference=", ".join(map(strip_math, answers)))


def carp_en(row: dict[str, Any], kind: str) -> Fields:
    return Fields(kind="math", question=text(row, "content"), reference=text(row, "answer"))


def question_answer(row: dict[str, Any], kind: str) -> Fields:
    """AIME / AMC / college_math / gaokao2023en / cmath: question (or problem) + answer."""
    question = row.get("problem") or row.get("question")
    if not question or not str(question).strip():
        raise RowError("no 'question' or 'problem'")
    answer = row.get("answer")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        reference = number(answer, "answer")
    else:
        reference = strip_math(text(row, "answer"))
    return Fields(kind="math", question=str(question).strip(), reference=reference)


def choice_or_math(row: dict[str, Any], kind: str) -> Fields:
    """gaokao2024_mix / cn_middle_school: a choice row (letter in `choice_answer`, options in
    the question) or a fill-in row (value in `answer`)."""
    question = text(row, "question")
    choice = row.get("choice_answer")
    if choice is not None and str(choice).strip():
        return Fields(
            kind="choice", question=question, reference=letter(choice, 0, "choice_answer")
        )
    return Fields(kind="math", question=question, reference=strip_math(text(row, "answer")))


# -- choice layouts ---------------------------------------------------------------------------


def choice_fields(question: str, options: list[str], reference: str) -> Fields:
    return Fields(
        kind="choice",
        question=f"{question}\n\n{lettered(options)}",
        reference=reference,
        options=options,
    )


def mmlu(row: dict[str, Any], kind: str) -> Fields:
    """MMLU / mmlu_stem: `choices` (a list, or its repr) and `answer` as an index or letter."""
    options = literal(row.get("choices"), "choices")
    if not isinstance(options, list) or len(options) < 2:
        raise RowError("'choices' is not a list of options")
    reference = letter(row.get("answer"), len(options), "answer")
    return choice_fields(text(row, "question"), [str(o) for o in options], reference)


def aqua(row: dict[str, Any], kind: str) -> Fields:
    """AQuA: options like ['A)21', 'B)21.5', ...] and `correct`."""
    raw = literal(row.get("options"), "options")
    if not isinstance(raw, list) or len(raw) < 2:
        raise RowError("'options' is not a list")
    options = [re.sub(r"^\s*[A-Z]\s*\)\s*", "", str(o)) for o in raw]
    return choice_fields(
        text(row, "question"), options, letter(row.get("correct"), len(options), "correct")
    )


def sat_math(row: dict[str, Any], kind: str) -> Fields:
    """SAT math: options in one string "A) ... B) ... C) ... D) ..." and `Answer`."""
    parts = re.split(r"(?:^|\s)([A-Z])\)\s*", text(row, "options"))
    options = [p.strip() for p in parts[2::2]]
    if len(options) < 2 or parts[1::2] != list(LETTERS[: len(options)]):
        raise RowError("'options' are not lettered A) B) C) ...")
    return choice_fields(
        text(row, "question"), options, letter(row.get("Answer"), len(options), "Answer")
    )


def gaokao_math_qa(row: dict[str, Any], kind: str) -> Fields:
    """gaokao_math_qa: options as a dict (or its repr) {'A': ..., ...} and `label`."""
    raw = literal(row.get("options"), "options")
    if not isinstance(raw, dict) or not raw:
        raise RowError("'options' is not a dict of letters")
    keys = sorted(raw)
    if keys != list(LETTERS[: len(keys)]):
        raise RowError(f"'options' keys are not A, B, C...: {keys}")
    options = [strip_math(str(raw[k])) for k in keys]
    return choice_fields(
        text(row, "question"), options, letter(row.get("label"), len(options), "label")
    )


def gpqa(row: dict[str, Any], kind: str) -> Fields:
    """GPQA's own CSV columns: the correct and three incorrect answers, shown in a shuffle seeded
    by the question (the same every run), graded by the correct one's letter."""
    question = text(row, "Question")
    correct = text(row, "Correct Answer")
    options = [correct] + [text(row, f"Incorrect Answer {i}") for i in (1, 2, 3)]
    seed = int(hashlib.sha256(question.encode()).hexdigest()[:16], 16)
    random.Random(seed).shuffle(options)
    return choice_fields(question, options, LETTERS[options.index(correct)])


# -- code layouts -----------------------------------------------------------------------------


def humaneval(row: dict[str, Any], kind: str) -> Fields:
    """HumanEval (and HumanEval+ with `plus_input`: extra inputs, expected values from the
    canonical solution)."""
    text(row, "prompt")
    prompt = str(row["prompt"])  # unstripped: the completion continues its last line
    fields = Fields(
        kind="code", question=prompt, prompt=prompt, test=text(row, "test"),
        entry_point=text(row, "entry_point"),
    )  # fmt: skip
    extra = [*(row.get("base_input") or []), *(row.get("plus_input") or [])]
    if extra:
        extra = literal(extra, "plus_input")
        if not all(isinstance(args, list) for args in extra):
            raise RowError("'plus_input' is not a list of argument lists")
        fields.calls = [CallTest(args=args) for args in extra]
        fields.reference_solution = prompt + str(row.get("canonical_solution") or "")
        fields.atol = float(row.get("atol") or 0) or None
    return fields


def mbpp(row: dict[str, Any], kind: str) -> Fields:
    """MBPP: `text` (or sanitized `prompt`) + `test_list` asserts (+ `test_setup_code` or
    `test_imports`); the question names the function the tests call."""
    tests = literal(row.get("test_list"), "test_list")
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise RowError("'test_list' is not a list of asserts")
    calls = re.findall(r"assert\s+\(?\s*(?:set\()?\s*([A-Za-z_]\w*)\s*\(", tests[0])
    if not calls:
        raise RowError(f"cannot tell the function under test from {tests[0][:60]!r}")
    task = str(row.get("text") or row.get("prompt") or "").strip()
    if not task:
        raise RowError("no 'text' or 'prompt'")
    setup = row.get("test_setup_code") or "\n".join(row.get("test_imports") or [])
    question = f"{task}\nYour code should pass these tests:\n" + "\n".join(tests)
    return Fields(
        kind="code", question=question, test="\n".join(tests), setup=str(setup) or None,
        entry_point=calls[0],
    )  # fmt: skip


def apps(row: dict[str, Any], kind: str) -> Fields:
    """APPS: `input_output` (JSON) with inputs/outputs; `fn_name` makes them call tests."""
    raw = row.get("input_output")
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise RowError("'input_output' is not JSON") from None
    if (
        not isinstance(spec, dict)
        or not spec.get("inputs")
        or len(spec["inputs"]) != len(spec.get("outputs", []))
    ):
        raise RowError("'input_output' has no matching inputs and outputs")
    question = text(row, "question")
    if starter := str(row.get("starter_code") or "").strip():
        question += f"\n\nStart from:\n```python\n{starter}\n```"
    if name := spec.get("fn_name"):
        calls = [
            CallTest(args=list(i), expected=o[0] if isinstance(o, list) and len(o) == 1 else o)
            for i, o in zip(spec["inputs"], spec["outputs"], strict=True)
        ]
        return Fields(kind="code", question=question, entry_point=str(name), calls=calls)
    stdio = [
        StdioTest(input=_joined(i), output=_joined(o))
        for i, o in zip(spec["inputs"], spec["outputs"], strict=True)
    ]
    return Fields(
        kind="code",
        question=question + "\n\nRead from standard input; write to standard output.",
        stdio=stdio,
    )


def _joined(value: Any) -> str:
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value)


class NoGlobals(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise RowError(f"the private tests reference {module}.{name}; only plain data is read")


def lcb_private(raw: str) -> list[dict[str, Any]]:
    """LiveCodeBench's private tests: base64 of zlib of a pickled JSON string (or JSON)."""
    if raw.lstrip().startswith("["):
        return list(json.loads(raw))
    try:
        payload = NoGlobals(io.BytesIO(zlib.decompress(base64.b64decode(raw)))).load()
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as exc:
        raise RowError(f"the private tests do not decode: {exc}") from None
    tests = json.loads(payload) if isinstance(payload, str | bytes) else payload
    if not isinstance(tests, list):
        raise RowError("the private tests are not a list")
    return tests


def livecodebench(row: dict[str, Any], kind: str) -> Fields:
    """LiveCodeBench code_generation: public + private tests, stdin or functional."""
    public = row.get("public_test_cases") or "[]"
    tests = (json.loads(public) if isinstance(public, str) else list(public)) + lcb_private(
        str(row.get("private_test_cases") or "[]")
    )
    if not tests:
        raise RowError("no public or private tests")
    question = text(row, "question_content")
    starter = str(row.get("starter_code") or "").strip()
    if all(t.get("testtype") == "stdin" for t in tests):
        stdio = [StdioTest(input=t["input"], output=t["output"]) for t in tests]
        return Fields(
            kind="code",
            question=question + "\n\nRead from standard input; write to standard output.",
            stdio=stdio,
        )
    metadata = json.loads(row.get("metadata") or "{}")
    name = metadata.get("func_name")
    if not name or not starter:
        raise RowError("functional tests without a func_name and starter code")
    calls = []
    for t in tests:
        try:
            args = [json.loads(line) for line in t["input"].splitlines() if line.strip()]
            calls.append(CallTest(args=args, expected=json.loads(t["output"])))
        except json.JSONDecodeError:
            raise RowError("a functional test is not JSON lines") from None
    question += f"\n\nStart from:\n```python\n{starter}\n```"
    return Fields(kind="code", question=question, entry_point=f"Solution().{name}", calls=calls)


# -- generic ----------------------------------------------------------------------------------

QUESTION_FIELDS = ("problem", "question", "prompt")
REFERENCE_FIELDS = ("answer", "final_answer", "solution")


def generic(row: dict[str, Any], kind: str) -> Fields:
    """No known layout: the usual names, in order (`--field` picks others)."""
    question = next((str(row[n]) for n in QUESTION_FIELDS if str(row.get(n) or "").strip()), None)
    if question is None:
        raise RowError(f"no question (looked for {'/'.join(QUESTION_FIELDS)})")
    reference = None
    for name in REFERENCE_FIELDS:
        value = row.get(name)
        if value is None or value == "":
            continue
        reference = worked_answer(str(value))
        if reference is None and name != "solution":
            reference = str(value).strip()
        if reference is not None:
            break
    if kind == "choice" and reference is not None:
        reference = letter(reference, 0, "answer")
    return Fields(
        kind=kind, question=question, reference=reference, test=row.get("test"),
        entry_point=row.get("entry_point"), prompt=row.get("prompt") if kind == "code" else None,
    )  # fmt: skip


def worked_answer(value: str) -> str | None:
    """The answer inside a worked solution: its last \\boxed{}, or GSM8K's `#### n`."""
    if "\\boxed" in value:
        return last_boxed(value)
    if "####" in value:
        return value.rsplit("####", 1)[1].strip().replace(",", "")
    return None


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


# Most specific first: the first layout whose fields a row has is the row's layout.
LAYOUTS: list[Layout] = [
    Layout(
        "livecodebench",
        "LiveCodeBench code_generation_lite",
        _f("question_content", "public_test_cases"),
        livecodebench,
    ),
    Layout("apps", "APPS (codeparrot/apps)", _f("question", "input_output"), apps),
    Layout(
        "humaneval",
        "HumanEval / HumanEval+ (evalplus)",
        _f("task_id", "prompt", "test", "entry_point"),
        humaneval,
    ),
    Layout("mbpp", "MBPP (full or sanitized)", _f("test_list"), mbpp),
    Layout(
        "gpqa",
        "GPQA (Idavidrein/gpqa CSV)",
        _f("Question", "Correct Answer", "Incorrect Answer 1"),
        gpqa,
    ),
    Layout("mmlu", "MMLU / Qwen2.5-Math mmlu_stem", _f("question", "choices", "answer"), mmlu),
    Layout("aqua", "AQuA-RAT / Qwen2.5-Math aqua", _f("question", "options", "correct"), aqua),
    Layout("sat_math", "Qwen2.5-Math sat_math", _f("question", "options", "Answer"), sat_math),
    Layout(
        "gaokao_math_qa",
        "Qwen2.5-Math gaokao_math_qa",
        _f("question", "options", "label"),
        gaokao_math_qa,
    ),
    Layout(
        "choice_or_math",
        "Qwen2.5-Math gaokao2024_* / cn_middle_school",
        _f("question", "choice_answer"),
        choice_or_math,
    ),
    Layout("asdiv", "ASDiv / Qwen2.5-Math asdiv", _f("body", "question", "answer"), asdiv),
    Layout("svamp", "SVAMP / Qwen2.5-Math svamp", _f("Body", "Question", "Answer"), svamp),
    Layout("mawps", "MAWPS / Qwen2.5-Math mawps", _f("input", "target"), mawps),
    Layout(
        "olympiadbench",
        "OlympiadBench / Qwen2.5-Math olympiadbench",
        _f("question", "final_answer"),
        olympiadbench,
    ),
    Layout("carp_en", "CARP (Qwen2.5-Math carp_en)", _f("content", "answer"), carp_en),
    Layout("math", "MATH / MATH-500 / Minerva", _f("problem", "solution"), math_boxed_solution),
    Layout("gsm8k", "GSM8K", _f("question", "answer"), gsm8k, absent=_f("problem")),
    Layout(
        "question_answer",
        "AIME / AMC / college_math / gaokao2023en / cmath",
        _f("answer"),
        question_answer,
    ),
]
GENERIC = Layout("generic", "the usual field names", _f(), generic)


def detect(row: dict[str, Any]) -> Layout:
    keys = {k for k, v in row.items() if v is not None}
    for layout in LAYOUTS:
        if layout.fields <= keys and not layout.absent & keys:
            if layout.name == "gsm8k" and "####" not in str(row.get("answer")):
                continue  # a question/answer row that is not GSM8K's worked answer
            return layout
    return GENERIC


def by_name(name: str) -> Layout:
    for layout in [*LAYOUTS, GENERIC]:
        if layout.name == name:
            return layout
    raise ValueError(
        f"unknown layout {name!r}: use one of "
        + ", ".join(each.name for each in [*LAYOUTS, GENERIC])
    )
