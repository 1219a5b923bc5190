"""`startbox ui`: a headless Streamlit server on loopback that finds (or warns about) the API."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.ui.conftest import KEY, STARTBOX, Stack, free_port, wait_http


def test_help_has_an_example() -> None:
    done = subprocess.run([STARTBOX, "ui", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "Example: startbox ui --api-url" in done.stdout and "STARTBOX_UI_API_URL" in done.stdout


def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, int]:
    port, log = free_port(), tmp_path / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [STARTBOX, "ui", "--port", str(port), *args], stdout=out, stderr=out
        )
    wait_http(f"http://127.0.0.1:{port}/_stcore/health", process, log, 60)
    return process, log, port


def stop_with_ctrl_c(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def test_serves_the_page_with_the_api_found(stack: Stack, tmp_path: Path) -> None:
    process, log, port = serve(tmp_path, "--api-url", stack.api_url, "--api-key", KEY)
    try:
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10, trust_env=False)
        assert page.status_code == 200 and "<noscript>" in page.text  # Streamlit's shell
    finally:
        stop_with_ctrl_c(process)
    assert f"API at {stack.api_url}: ok" in log.read_text()


def test_an_absent_api_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    """In a compose stack the UI may start before the API."""
    absent = f"http://127.0.0.1:{free_port()}"
    process, log, port = serve(tmp_path, "--api-url", absent)
    process.terminate()  # as `docker stop` does: Streamlit must stop with it, not linger
    process.wait(timeout=30)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=5, trust_env=False)
    text = log.read_text()
    assert f"warning: cannot reach the startbox API at {absent}" in text
    assert "startbox api" in text


def test_a_bad_flag_value_is_named(tmp_path: Path) -> None:
    done = subprocess.run([STARTBOX, "ui", "--port", "0"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2 and "port" in done.stderr
