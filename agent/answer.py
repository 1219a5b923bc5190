"""Pulling the final answer out of a model's text: one `\\boxed{}` reader for every caller.

Models box intermediate results, repeat the answer in prose after the box, box several parts of
one answer, or box nothing and end with "the final answer is 7." The readers here follow what
the strongest graders do (last box wins; a "final answer is" after it overrides; boxes in one
closing sentence are one answer; with no box, the answer phrase of the last lines), and never
read inside code blocks, where an empty `\\boxed{}` in a comment must not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOX = re.compile(r"\\(?:boxed|fbox)\s*(\{)|\\boxed[ \t]+([^\s$\\{}]+)")
FENCE = re.compile(r"```[a-z]*\n.*?(?:```|\Z)", re.DOTALL)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
FINAL_PHRASE = re.compile(r"(?:final answer|the answer|answer)\s*(?:is|:|=)[\s:]*", re.IGNORECASE)
HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
JOINER = re.compile(r"^[\s$,;]*(?:,|and|or|&|;)?[\s$,;]*(?:[a-zA-Z]\s*=\s*)?[\s$]*$")
CLOSERS = re.compile(r"^(?:\\\[|\\\(|\$\$|\$)+|(?:\\\]|\\\)|\$\$|\$)+$")
SENTENCE_END = re.compile(r"[\s.]+$")


@dataclass(frozen=True)
class Box:
    start: int
    end: int
    content: str


@dataclass(frozen=True)
class Extracted:
    """What a kind's reader found: the answer, and whether it was marked (a box, a block)."""

    answer: str | None
    marked: bool


def boxes(text: str) -> list[Box]:
    """Every `\\boxed{...}`, `\\fbox{...}` and `\\boxed 5` in order, braces balanced; an unclosed
    box is dropped."""
    found: list[Box] = []
    position = 0
    while match := BOX.search(text, position):
        if match.group(2) is not None:
            found.append(Box(match.start(), match.end(), match.group(2)))
            position = match.end()
            continue
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    found.append(Box(match.start(), i + 1, text[start:i]))
                    break
        position = match.end()
    return found


def last_boxed(text: str) -> str | None:
    """Content of the last non-empty box, stripped; the reader datasets use for references."""
    for box in reversed(boxes(text)):
        if box.content.strip():
            return box.content.strip()
    return None


def without_code(text: str) -> str:
    """The text with fenced blocks blanked (same length, so offsets stay valid)."""
    return FENCE.sub(lambda m: " " * len(m.group(0)), text)


def clean(answer: str) -> str:
    """`3.` -> `3`; `$7$` -> `7`; a trailing `\\]` or sentence stop removed."""
    answer = answer.strip()
    previous = None
    while previous != answer:
        previous = answer
        answer = CLOSERS.sub("", answer).strip()
        answer = SENTENCE_END.sub("", answer) if not answer.endswith("\\.") else answer
    return answer


def boxed_answer(text: str) -> str | None:
    """The last box, or the boxes of one closing sentence joined ("x = 1 and y = 2")."""
    found = [b for b in boxes(without_code(text)) if clean(b.content)]
    if not found:
        return None
    group = [found[-1]]
    for box in reversed(found[:-1]):
        between = text[box.end : group[0].start]
        if "\n" in between.strip() or not JOINER.match(between):
            break
        group.insert(0, box)
    return ", ".join(clean(b.content) for b in group)


def phrase_answer(text: str) -> str | None:
    """ "... the final answer is $10{,}455$." in the last lines: the part after the phrase."""
    lines = [line.strip() for line in without_code(text).splitlines() if line.strip()]
    for line in reversed(lines[-3:]):
        heads = list(FINAL_PHRASE.finditer(line))
        if heads and (answer := clean(HOPE.sub("", line[heads[-1].end() :]))):
            return answer
    return None


def fallback(text: str) -> str | None:
    """The last non-empty line, cleaned, when the model marked no answer at all."""
    lines = [line.strip() for line in without_code(text).splitlines() if line.strip()]
    for line in reversed(lines):
        if line := clean(HOPE.sub("", line)):
            return line
    return None


def math_answer(section: str, thinking: str) -> Extracted:
    """The answer section's last box, unless a "final answer is" follows it; else the phrase;
    else the thinking's last box; else the last line."""
    visible = without_code(section)
    found = [b for b in boxes(visible) if clean(b.content)]
    if found:
        tail = phrase_answer(visible[found[-1].end :])
        return Extracted(tail or boxed_answer(section), True)
    if (phrase := phrase_answer(section)) is not None:
        return Extracted(phrase, True)
    if (boxed := boxed_answer(thinking)) is not None:
        return Extracted(boxed, True)
    return Extracted(fallback(section), False)


CHOICE = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:)?\s*[:\s]*\(?\**([A-J])\b\)?|^\s*\(?\**([A-J])\**\)?(?:[\s.:)]|$)",
    re.IGNORECASE | re.MULTILINE,
)
LETTER = re.compile(r"^\s*\(?\s*([A-J])\s*\)?(?:[\s.:)]|$)")


def choice_answer(section: str, thinking: str) -> Extracted:
    """A letter: `\\boxed{D}`, "The answer is (D)", "D) 10^-4 eV", "(D)"; upper case."""
    for text in (section, thinking):
        boxed = boxed_answer(text)
        if boxed is not None:
            letter = LETTER.match(re.sub(r"\\text\{(.*?)\}", r"\1", boxed))
            if letter:
                return Extracted(letter.group(1).upper(), True)
        matches = [m for m in CHOICE.finditer(without_code(text)) if m.group(1) or m.group(2)]
        upper = [m for m in matches if (m.group(1) or m.group(2)).isupper()]
        if upper or matches:
            best = (upper or matches)[-1]
            return Extracted((best.group(1) or best.group(2)).upper(), True)
    return Extracted(None, False)


def last_python_block(text: str) -> str | None:
    blocks = PYTHON_BLOCK.findall(text)
    return blocks[-1].strip("\n") if blocks else None


def code_answer(section: str, thinking: str) -> Extracted:
    """The last ```python block of the answer, else of the whole transcript."""
    program = last_python_block(section) or last_python_block(thinking)
    return Extracted(program, True) if program else Extracted(fallback(section), False)
