"""Model-shaped text as Streamlit markdown: literal, never an image, a link or a way out."""

from __future__ import annotations

from markdown_it import MarkdownIt

from ui.markdown import WORD_JOINER, boxed, escape

BEACON = "http://127.0.0.1:9/?data=secret"
HOSTILE = [
    f"![]({BEACON})",
    f"[click me]({BEACON})",
    f"<{BEACON}>",
    f"see {BEACON} and www.example.test and a@b.test",
    f'<img src="{BEACON}">',
    "```\n**bold** after a fence\n```",
    "$x$ :red[red] :material/home: # heading\n- item\n1. item\n> quote",
]


def test_escaped_text_renders_as_its_own_characters() -> None:
    """A CommonMark parser (markdown-it; the browser test covers Streamlit's own, autolinks
    included) reads the escaped text back as exactly the original characters and nothing else."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for text in HOSTILE:
        blocks = md.parse(escape(text))
        assert [t.type for t in blocks] == ["paragraph_open", "inline", "paragraph_close"], text
        children = blocks[1].children or []
        assert {t.type for t in children} <= {"text", "hardbreak"}, (text, children)
        shown = "".join("\n" if t.type == "hardbreak" else t.content for t in children)
        assert shown.replace(WORD_JOINER, "") == text


def test_escaped_text_keeps_its_line_breaks() -> None:
    assert escape("a\nb") == "a  \nb"
    assert escape("2 * 3 = 6.") == "2 \\* 3 \\= 6\\."


def test_no_autolink_survives() -> None:
    """GFM links bare URLs after escapes are resolved; a word joiner splits each such start."""
    for text, cut in (("http://h", "http:\u2060"), ("WWW.h.test", "WWW\u2060"),
                      ("a@b.test", "a@\u2060"), ("mailto:x", "mailto:\u2060")):  # fmt: skip
        assert escape(text).replace("\\", "").startswith(cut), text


def test_an_answer_is_boxed_unless_it_could_leave_the_math_block() -> None:
    assert boxed("\\frac{1}{2}") == "\\boxed{\\frac{1}{2}}"
    assert boxed("1,\n 2") == "\\boxed{1, 2}"  # no line of its own can close `$$`
    assert boxed("1\n$$\n![](http://x/)\n$$") is None
    assert boxed("\\href{http://x/}{1}") is None and boxed("\\htmlClass{c}{1}") is None
    assert boxed("\\urlish") == "\\boxed{\\urlish}"  # only the commands themselves
