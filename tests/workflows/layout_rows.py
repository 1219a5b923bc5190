"""A few rows per benchmark layout, written for startbox to follow each source's real fields and
value shapes (named per layout), with what each row must load as: (kind, reference)."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from typing import Any

LCB_PRIVATE = [{"input": "5\n1 2 3 4 5\n", "output": "15\n", "testtype": "stdin"}]


def lcb_private(tests: list[dict[str, str]]) -> str:
    """LiveCodeBench's encoding of private tests: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


# layout -> (source, rows, expected (kind, reference) per row)
LAYOUT_ROWS: dict[str, tuple[str, list[dict[str, Any]], list[tuple[str, str | None]]]] = {
    "asdiv": (
        "Qwen2.5-Math evaluation/data/asdiv/test.jsonl",
        [
            {
                "body": "A basket holds 4 red and 5 green pears.",
                "question": "How many pears?",
                "solution_type": "Addition",
                "answer": "9 (pears)",
                "formula": "4+5=9",
                "idx": 0,
            },
            {
                "body": "Tom has 12 cards and gives away 5.",
                "question": "How many are left?",
                "solution_type": "Subtraction",
                "answer": "7 (cards)",
                "formula": "12-5=7",
                "idx": 1,
            },
            {
                "body": "The ratio of boys to girls is 3 to 4.",
                "question": "Write the ratio.",
                "solution_type": "Ratio",
                "answer": "3:4",
                "formula": "3/4",
                "idx": 2,
            },
        ],
        [("math", "9"), ("math", "7"), ("math", "3:4")],
    ),
    "mmlu": (
        "Qwen2.5-Math evaluation/data/mmlu_stem/test.jsonl (choices as a list repr, index answer)",
        [
            {
                "question": "Which gas do plants take in?",
                "type": "high_school_biology",
                "choices": "['oxygen', 'nitrogen', 'carbon dioxide', 'helium']",
                "answer": 2,
            },
            {
                "question": "2 + 2 =",
                "type": "elementary_mathematics",
                "choices": ["3", "4", "5", "6"],
                "answer": 1,
            },
        ],
        [("choice", "C"), ("choice", "B")],
    ),
    "olympiadbench": (
        "Qwen2.5-Math evaluation/data/olympiadbench/test.jsonl (final_answer is a list)",
        [
            {
                "id": 1606,
                "subfield": "Combinatorics",
                "context": None,
                "question": "Find the least number of moves.",
                "solution": "['It is 2.']",
                "final_answer": ["2"],
                "is_multiple_answer": False,
                "unit": None,
                "answer_type": "Numerical",
                "error": None,
            },
            {
                "id": 2001,
                "subfield": "Algebra",
                "context": None,
                "question": "Find all x.",
                "solution": "['...']",
                "final_answer": ["$-1$", "$3$"],
                "is_multiple_answer": True,
                "unit": None,
                "answer_type": "Numerical",
                "error": None,
            },
        ],
        [("math", "2"), ("math", "-1, 3")],
    ),
    "choice_or_math": (
        "Qwen2.5-Math evaluation/data/gaokao2024_mix and cn_middle_school (choice_answer)",
        [
            {
                "idx": 0,
                "question": "已知集合 M={x|-3<x<1}, 则 M=( ) "
                "A. {x|x<1} B. ... C. {x|-3<x<4} D. ...",
                "answer": "C. {x \\mid-3<x<4}",
                "choice_answer": "C",
            },
            {
                "idx": 1,
                "question": "下列四个数中\uff0c最小的数是()\nA.-2  B.0  C. 3  D. -1/2",
                "answer": "-2",
                "choice_answer": "A",
            },
            {"idx": 2, "question": "求 1+1 的值.", "answer": "2", "choice_answer": ""},
        ],
        [("choice", "C"), ("choice", "A"), ("math", "2")],
    ),
    "aqua": (
        "Qwen2.5-Math evaluation/data/aqua/test.jsonl (AQuA-RAT)",
        [
            {
                "question": "A train covers 60 km in 1.5 hours. Its speed?",
                "options": "['A)30', 'B)40', 'C)45', 'D)50', 'E)None of these']",
                "rationale": "60/1.5 = 40",
                "correct": "B",
            },
        ],
        [("choice", "B")],
    ),
    "sat_math": (
        "Qwen2.5-Math evaluation/data/sat_math/test.jsonl",
        [
            {
                "id": "0",
                "question": "If 3x = 12, what is x?",
                "options": "A) 2 B) 3 C) 4 D) 6",
                "Answer": "C",
            },
        ],
        [("choice", "C")],
    ),
    "gaokao_math_qa": (
        "Qwen2.5-Math evaluation/data/gaokao_math_qa/test.jsonl (options as a dict repr)",
        [
            {
                "passage": None,
                "question": "设集合 A={x|x>=1}, 则 A=( )",
                "options": "{'A': '$\\\\{x|x>-1\\\\}$', 'B': '$\\\\{x|x\\\\geq 1\\\\}$', "
                "'C': '$\\\\{x|x<2\\\\}$', 'D': '$\\\\{x|1<x<2\\\\}$'}",
                "label": "B",
                "answer": None,
                "other": {"source": "2021"},
            },
        ],
        [("choice", "B")],
    ),
    "svamp": (
        "Qwen2.5-Math evaluation/data/svamp/test.jsonl",
        [
            {
                "Answer": 145.0,
                "Question": "How big is each group?",
                "Equation": "( 290.0 / 2.0 )",
                "Body": "There are 290 bananas in 2 groups.",
                "Type": "Common-Division",
                "ID": "chal-777",
                "idx": 0,
            },
        ],
        [("math", "145")],
    ),
    "mawps": (
        "Qwen2.5-Math evaluation/data/mawps/test.jsonl",
        [
            {
                "input": "Joan found 70 shells and gave away 27. How many are left?",
                "target": 43.0,
                "type": "singleeq",
                "idx": 0,
            }
        ],
        [("math", "43")],
    ),
    "carp_en": (
        "Qwen2.5-Math evaluation/data/carp_en/test.jsonl",
        [
            {
                "content": "Calculate $(3a-b)(-3a-b)$ equals to ____?",
                "answer": "b ^ { 2 } - 9 a ^ { 2 }",
                "steps": "...",
                "expr_cands": "[]",
                "exprs": ["b ^ { 2 } - 9 a ^ { 2 }"],
                "edges": "{}",
            }
        ],
        [("math", "b ^ { 2 } - 9 a ^ { 2 }")],
    ),
    "math": (
        "MATH-500 (HuggingFaceH4/MATH-500) and Qwen2.5-Math minerva_math (answer in the solution)",
        [
            {
                "problem": "Convert $(0,3)$ to polar coordinates.",
                "solution": "... $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.",
                "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
                "subject": "Precalculus",
                "level": 2,
                "unique_id": "test/precalculus/807.json",
            },
            {
                "problem": "Find the luminosity in erg/s.",
                "solution": "So $L=\\boxed{4.5e33}$ erg/s.",
                "type": "Introduction to Astronomy (8.282J Spring 2006)",
                "idx": 0,
            },
            {
                "problem": "Compute the vector.",
                "solution": "\\boxed{\n\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}\n}",
                "level": "Level 3",
                "type": "Precalculus",
            },
        ],
        [
            ("math", "\\left( 3, \\frac{\\pi}{2} \\right)"),
            ("math", "4.5e33"),
            ("math", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
        ],
    ),
    "gsm8k": (
        "GSM8K test (openai/grade-school-math)",
        [
            {
                "question": "Janet has 16 eggs and uses 7. How many remain?",
                "answer": "16 - 7 = <<16-7=9>>9\n#### 9",
                "idx": 0,
            },
            {
                "question": "A shop sells 1,200 pens a day for 3 days. How many?",
                "answer": "1200*3=<<1200*3=3600>>3600\n#### 3,600",
            },
        ],
        [("math", "9"), ("math", "3600")],
    ),
    "question_answer": (
        "Qwen2.5-Math aime24 / amc23 / college_math / gaokao2023en",
        [
            {
                "id": 0,
                "problem": "Cities A and B are 45 miles apart...",
                "answer": 27.0,
                "url": "https://artofproblemsolving.com/",
                "question": "Cities A and B are 45 miles apart...",
            },
            {
                "data_source": "college_math.algebra",
                "question_number": "exercise.0.4.61",
                "question": "Simplify: $-10-4(n-5)$",
                "answer": "$10-4 n$",
                "license": "CC BY 3.0",
            },
        ],
        [("math", "27"), ("math", "10-4 n")],
    ),
    "gpqa": (
        "GPQA (Idavidrein/gpqa, gpqa_diamond.csv original columns)",
        [
            {
                "Record ID": "rec1",
                "Question": "Which energy difference resolves the two states?",
                "Correct Answer": "10^-4 eV",
                "Incorrect Answer 1": "10^-11 eV",
                "Incorrect Answer 2": "10^-8 eV",
                "Incorrect Answer 3": "10^-9 eV",
                "High-level domain": "Physics",
            }
        ],
        [("choice", None)],  # the letter depends on the seeded shuffle: checked in the test
    ),
    "mbpp": (
        "MBPP (google-research mbpp.jsonl: text / test_list / test_setup_code)",
        [
            {
                "task_id": 11,
                "text": "Write a python function to remove first and last occurrence of a given "
                "character from the string.",
                "code": "def remove_Occ(s,ch): ...",
                "test_list": [
                    'assert remove_Occ("hello","l") == "heo"',
                    'assert remove_Occ("abcda","a") == "bcd"',
                    'assert remove_Occ("PHP","P") == "H"',
                ],
                "test_setup_code": "",
                "challenge_test_list": [],
            }
        ],
        [("code", None)],
    ),
    "apps": (
        "APPS (codeparrot/apps: question / input_output JSON / starter_code)",
        [
            {
                "problem_id": 1,
                "question": "Read n and n numbers; print their sum.",
                "solutions": "[]",
                "input_output": json.dumps(
                    {"inputs": ["3\n1 2 3\n", "1\n5\n"], "outputs": ["6\n", "5\n"]}
                ),
                "difficulty": "introductory",
                "url": "https://codeforces.com/",
                "starter_code": "",
            },
            {
                "problem_id": 2,
                "question": "Return the double of x.",
                "solutions": "[]",
                "input_output": json.dumps(
                    {"fn_name": "double", "inputs": [[2], [5]], "outputs": [[4], [10]]}
                ),
                "difficulty": "introductory",
                "url": "",
                "starter_code": "def double(x):",
            },
        ],
        [("code", None), ("code", None)],
    ),
    "livecodebench": (
        "LiveCodeBench code_generation_lite (public_test_cases JSON, private zlib+pickle+base64)",
        [
            {
                "question_title": "Sum",
                "question_content": "Given N and N integers, print the sum.",
                "platform": "atcoder",
                "question_id": "abc001_a",
                "contest_id": "abc001",
                "contest_date": "2024-01-01T00:00:00",
                "starter_code": "",
                "difficulty": "easy",
                "public_test_cases": json.dumps(
                    [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}]
                ),
                "private_test_cases": lcb_private(LCB_PRIVATE),
                "metadata": "{}",
            },
            {
                "question_title": "Twice",
                "question_content": "Return twice the number.",
                "platform": "leetcode",
                "question_id": "9001",
                "contest_id": "w1",
                "contest_date": "2024-01-01T00:00:00",
                "starter_code": "class Solution:\n    def twice(self, x: int) -> int:\n        ",
                "difficulty": "easy",
                "public_test_cases": json.dumps(
                    [{"input": "3", "output": "6", "testtype": "functional"}]
                ),
                "private_test_cases": lcb_private(
                    [{"input": "-1", "output": "-2", "testtype": "functional"}]
                ),
                "metadata": json.dumps({"func_name": "twice"}),
            },
        ],
        [("code", None), ("code", None)],
    ),
}
