from agent.answer import fallback, last_boxed, last_python_block


def test_last_boxed_handles_nesting_and_picks_the_last() -> None:
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{ {a}{b} }") == "{a}{b}"
    assert last_boxed(r"\fbox{3}") == "3"
    assert last_boxed(r"\boxed{unclosed") is None
    assert last_boxed("no answer") is None


def test_last_python_block() -> None:
    text = "```python\na = 1\n```\ntext\n```python\nb = 2\n```"
    assert last_python_block(text) == "b = 2"
    assert last_python_block("none") is None


def test_fallback_is_the_last_non_empty_line() -> None:
    assert fallback("a\n\nb\n  \n") == "b"
    assert fallback("  ") is None
