"""The UI is only an HTTP client (DESIGN.md), so it runs in a container of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import ui

OURS = {"agent", "sandbox", "model_host", "workflows", "startbox"}


def test_ui_imports_nothing_else_of_startbox() -> None:
    found = []
    for path in Path(ui.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] in OURS]
    assert not found, f"ui must talk to the API over HTTP, not import: {found}"
