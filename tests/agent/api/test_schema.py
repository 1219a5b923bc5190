"""schemathesis against the API's own OpenAPI schema: no input may produce a server error."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.agent.api.conftest import KEY, Api


async def test_no_input_yields_a_server_error(api: Api, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(st), "run", f"{api.url}/openapi.json",
        "--checks", "not_a_server_error",
        "--header", f"x-api-key: {KEY}",
        "--max-examples", "10",
        "--request-timeout", "60",
        "--generation-deterministic",
        "--workers", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 600)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
