"""Pulling the final answer out of a transcript: the last \\boxed{...}, or the last program."""

from __future__ import annotations

import re

BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, with nested braces balanced (\\frac{1}{2} etc.)."""
    for match in reversed(list(BOXED.finditer(text))):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def last_python_block(text: str) -> str | None:
    blocks = PYTHON_BLOCK.findall(text)
    return blocks[-1].strip("\n") if blocks else None


def fallback(text: str) -> str | None:
    """The last non-empty line, when the model gave no marked answer."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None
