"""Are two math answers the same? Normalise what math-verify does not read, then ask it.

math-verify (sympy under a LaTeX parser) decides numbers, fractions, sets, intervals, matrices
and expressions. Before it, both sides lose what only dresses an answer (units, degree signs,
`$`, digit-group spaces) and gain spellings it knows (`3e5` -> `3\\times10^{5}`, `4pi` ->
`4\\pi`, `x \\le 3` -> `(-\\infty,3]`). What distinguishes answers stays: open vs closed
interval ends, words (east vs west), and precision (2 vs 2.000001 are different).
"""

from __future__ import annotations

import re
from fractions import Fraction

NUMBER = r"-?\d+(?:\.\d+)?"
UNIT_WORDS = (
    "dollars?|cents?|euros?|yuan|units?|square units|sq units|cm|mm|km|m|meters?|metres?|"
    "inches|inch|in|feet|foot|ft|yards?|miles?|kg|g|grams?|pounds?|lbs?|ounces?|oz|hours?|"
    "hrs?|minutes?|mins?|seconds?|secs?|s|days?|weeks?|months?|years?|people|students|"
    "apples|cookies|marbles|books|pages|cars|points|ways|times|cups|liters?|litres?|ml|"
    "square (?:feet|meters|inches|centimeters|units)|cubic (?:feet|meters|inches|units)|"
    r"cm\^2|m\^2|cm\^3|mph|km/h|degrees?|percent"
)
UNIT = re.compile(
    rf"^({NUMBER}|{NUMBER}\s*/\s*\d+)\s*(?:\\(?:text|mbox|mathrm)\{{\s*)?(?:{UNIT_WORDS})\.?\}}?$",
    re.IGNORECASE,
)
DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°|\\degree|\s*\\text\{\s*degrees?\s*\}")
SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*[eE]\s*([+-]?\d+)(?![\w.])")
TIMES_TEN = re.compile(r"(\d)\s*(?:\\times|\\cdot|\*|x|\u00d7)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?")
PI = re.compile(r"(?<![\\a-zA-Z])pi(?![a-zA-Z])|π")
DIGIT_GROUPS = re.compile(r"(?<![\d.])(\d{1,3})((?:(?:\s|\\,|\\ |\\;|~|\{,\}|\\!)\d{3})+)(?![\d.])")
GROUP_SEPARATOR = re.compile(r"\s|\\,|\\ |\\;|~|\{,\}|\\!")
LESS = r"(?:<=|<|\\lt\b|\\leqslant|\\leq|\\le\b|≤)"
MORE = r"(?:>=|>|\\gt\b|\\geqslant|\\geq|\\ge\b|≥)"
PERCENT = re.compile(r"\\?%$")
REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")
VAR = r"([a-zA-Z])"
BOUND = r"([^<>=\\,]+?|-?\\infty|\\frac\{[^{}]*\}\{[^{}]*\}|\\sqrt\{[^{}]*\}|-?\d+(?:\.\d+)?)"


def _closed(symbol: str) -> bool:
    return "=" in symbol or "le" in symbol or "ge" in symbol or symbol in "≤≥"


def inequality_to_interval(text: str) -> str:
    """`x \\le 3` -> `(-\\infty,3]`; `1 < x \\le 2` -> `(1,2]`; anything else unchanged."""
    s = text.strip()
    if m := re.fullmatch(rf"{BOUND}\s*({LESS})\s*{VAR}\s*({LESS})\s*{BOUND}", s):
        low, op1, _, op2, high = m.groups()
        left, right = "[" if _closed(op1) else "(", "]" if _closed(op2) else ")"
        return f"{left}{low.strip()},{high.strip()}{right}"
    if m := re.fullmatch(rf"{VAR}\s*({LESS})\s*{BOUND}", s):
        _, op, high = m.groups()
        return f"(-\\infty,{high.strip()}{']' if _closed(op) else ')'}"
    if m := re.fullmatch(rf"{VAR}\s*({MORE})\s*{BOUND}", s):
        _, op, low = m.groups()
        return f"{'[' if _closed(op) else '('}{low.strip()},\\infty)"
    return text


def _repeating(match: re.Match[str]) -> str:
    """`0.1\\overline{6}` -> `\\frac{1}{6}`: a repeating decimal as the fraction it is."""
    sign, whole, fixed, period = match.groups()
    value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed))
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def normalize(answer: str) -> str:
    """The answer in the spelling math-verify reads best; meaning unchanged."""
    s = answer.strip().strip("$").strip()
    s = re.sub(r"^\\\[|\\\]$|^\\\(|\\\)$", "", s).strip()
    s = (
        s.replace("\\varnothing", "\\emptyset")
        .replace("\\dfrac", "\\frac")
        .replace("\\tfrac", "\\frac")
    )
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "")
    s = re.sub(r"^\\\$\s*|\\\$$|^\$", "", s)  # \$12
    s = DEGREES.sub("", s)
    s = REPEATING.sub(_repeating, s)
    s = re.sub(r"\\(?:text|mbox|mathrm)\{\s*\}", "", s).strip()
    s = DIGIT_GROUPS.sub(lambda m: m.group(1) + GROUP_SEPARATOR.sub("", m.group(2)), s)
    s = SCIENTIFIC.sub(r"\1\\times10^{\2}", s)
    s = TIMES_TEN.sub(r"\1\\times10^{\2}", s)
    s = PI.sub(r"\\pi", s)
    s = re.sub(r"(\d)\s*\\pi", r"\1\\pi", s)
    if m := UNIT.match(s):
        s = m.group(1)
    s = re.sub(r"\s*\\(?:text|mbox|mathrm)\{\s*(?:" + UNIT_WORDS + r")\s*\}$", "", s, flags=re.I)
    s = inequality_to_interval(s)
    return s.rstrip(".").strip()


def _plain(text: str) -> str:
    """For comparing words: no \\text{}, spaces, braces, case."""
    text = re.sub(r"\\(?:text|mbox|mathrm|textbf)\{(.*?)\}", r"\1", text)
    return re.sub(r"[\s{}$\\]", "", text).lower()


def equivalent(reference: str, answer: str, timeout: int = 5) -> bool:
    """Whether `answer` means `reference`; call it from a main thread (math-verify's alarms)."""
    from math_verify import parse, verify

    gold, target = normalize(reference), normalize(answer)
    if not gold or not target:
        return False
    if gold == target or _plain(gold) == _plain(target):
        return True
    parsed_gold = parse(f"${gold}$", parsing_timeout=timeout)
    targets = [target]
    if gold.endswith("%") != target.endswith("%"):  # 12.5\% stated as 12.5, or the reverse
        gold_bare = PERCENT.sub("", gold)
        targets.append(PERCENT.sub("", target) if target.endswith("%") else target + "\\%")
        if gold_bare != gold:
            parsed_gold = parsed_gold + parse(f"${gold_bare}$", parsing_timeout=timeout)
    return any(
        verify(
            parsed_gold, parse(f"\\boxed{{{t}}}", parsing_timeout=timeout), timeout_seconds=timeout
        )
        for t in targets
    )
