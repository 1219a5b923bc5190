"""The UI is only an HTTP client (DESIGN.md), so it runs in a container of its own."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def test_python_dash_m_ui_runs_with_the_rest_of_startbox_missing() -> None:
    """`python -m ui` is the UI container's entry point; only ui/ and its PyPI deps exist."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in sorted(OURS))
    script = f"import runpy, sys; {blocked}; runpy.run_module('ui', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", script, "--help"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--api-url" in done.stdout and "STARTBOX_UI_API_URL" in done.stdout
