"""`startbox sandbox exec` as a user runs it: code from -c, a file or stdin; JSON or readable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STARTBOX = str(Path(sys.executable).with_name("startbox"))  # the venv's own command


def startbox(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "300"}  # keep Rich from wrapping messages mid-phrase
    return subprocess.run([STARTBOX, *args], input=stdin, capture_output=True, env=env, timeout=120)


def test_exec_code_as_json() -> None:
    done = startbox("sandbox", "exec", "--json", "-c", "print('hi')\n6 * 7")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["status"], result["stdout"], result["value"]) == ("ok", "hi\n", "42")


def test_exec_file_and_stdin(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("import sympy\nsympy.factorint(2**32 + 1)")
    from_file = startbox("sandbox", "exec", str(script))
    assert from_file.returncode == 0
    assert b"641" in from_file.stdout
    from_stdin = startbox("sandbox", "exec", "--json", "-", stdin=b"1 / 0")
    assert from_stdin.returncode == 1
    assert json.loads(from_stdin.stdout)["status"] == "error"


def test_exec_limits_from_flags() -> None:
    done = startbox("sandbox", "exec", "--json", "--timeout", "1", "-c", "while True: pass")
    assert json.loads(done.stdout)["status"] == "timeout"


def test_exec_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    missing = startbox("sandbox", "exec", str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and b"is not a file" in missing.stderr
    both = startbox("sandbox", "exec", "-c", "1", "file.py")
    assert both.returncode == 2
    binary = startbox("sandbox", "exec", "--json", "-", stdin=b"\xff\xfe")
    assert json.loads(binary.stdout)["status"] == "rejected"
