"""`rft run`'s plan and runner: the steps of one round, finished steps skipped on a rerun, a
failed step named, and a step's server started before it and stopped before training."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.workflows.rft.helpers import hinted
from workflows.rft.cli import show_loop
from workflows.rft.loop import LoopConfig, Step, Timing, plan, run
from workflows.rft.trajectory import write_trajectories

PY = sys.executable


def test_one_round_serves_the_base_then_the_trained_model(tmp_path: Path) -> None:
    steps = plan(LoopConfig(workdir=tmp_path, rounds=2, serve_port=9000, serve=["--no-compile"]))
    names = [s.name for s in steps]
    assert names[:3] == ["held-out problems", "train problems", "baseline eval"]
    assert names[3:9] == ["round 1: collect", "round 1: filter", "round 1: export",
                          "round 1: train", "round 1: eval", "round 2: collect"]  # fmt: skip
    by = {s.name: s for s in steps}
    assert by["baseline eval"].port == by["round 1: collect"].port == 9000
    assert by["round 1: eval"].port == by["round 2: collect"].port == 9001
    assert by["round 2: collect"].server == by["round 1: eval"].server
    assert by["baseline eval"].server[-1] == by["round 1: eval"].server[-1] == "--no-compile"  # type: ignore[index]
    assert str(tmp_path / "run-1" / "model") in by["round 1: eval"].server  # type: ignore[operator]
    assert by["round 1: train"].exclusive and by["round 1: train"].server is None
    assert "--no-require-tool" not in by["round 1: filter"].argv


def test_a_given_base_url_is_used_and_not_served(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8010"
    steps = plan(LoopConfig(workdir=tmp_path, base_url=url))
    assert steps[2].server is None and url in steps[2].argv
    assert steps[3].server is None and url in steps[3].argv


def test_finished_steps_are_skipped(tmp_path: Path) -> None:
    problems, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    problems.write_text("".join(json.dumps({"id": i, "problem": "1+1?", "answer": "2"}) + "\n"
                                for i in ("a", "b")))  # fmt: skip
    row = {"dataset": "p", "problem_id": "a", "sample": 0, "kind": "math", "status": "ok"}
    out.write_text(json.dumps(row) + "\n")
    step = Step(name="eval", argv=[], runs=(problems, 1, out))
    assert not step.done()  # b is missing
    out.write_text(out.read_text() + json.dumps({**row, "problem_id": "b"}) + "\n")
    assert step.done()
    out.write_text(out.read_text() + json.dumps({**row, "cause": "run_error"}) + "\n")
    assert not step.done()  # a failed run is run again

    marker = tmp_path / "ran"
    touch = Step(name="touch", argv=[PY, "-c", f"open({str(marker)!r}, 'w')"], product=marker)
    said: list[str] = []
    timings = run([touch, touch], said.append)
    assert marker.is_file() and [t.skipped for t in timings] == [False, True]
    assert said[-1] == "[bold]touch[/]: done already, skipped"


def test_a_failed_step_stops_the_loop_and_says_how_to_go_on(tmp_path: Path) -> None:
    fail = Step(name="collect", argv=[PY, "-c", "raise SystemExit(3)"])
    never = Step(name="after", argv=[PY, "-c", f"open({str(tmp_path / 'x')!r}, 'w')"])
    with pytest.raises(RuntimeError, match=r"collect failed \(exit 3\); fix it and rerun"):
        run([fail, never], lambda _: None)
    assert not (tmp_path / "x").exists()


def test_a_server_runs_for_its_steps_and_stops_before_an_exclusive_one(tmp_path: Path) -> None:
    port = free_port()
    server = [PY, "-c", "import http.server as h, json\n"
              "class H(h.BaseHTTPRequestHandler):\n"
              "    def do_GET(self):\n"
              "        self.send_response(200); self.end_headers(); self.wfile.write(b'{}')\n"
              f"h.HTTPServer(('127.0.0.1', {port}), H).serve_forever()"]  # fmt: skip
    probe = (f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close(); "
             f"open({str(tmp_path / 'reached')!r}, 'w')")  # fmt: skip
    uses = Step(name="uses it", argv=[PY, "-c", probe], server=server, port=port)
    alone = Step(name="alone", argv=[PY, "-c", probe], exclusive=True)
    run([uses], lambda _: None, ready_timeout=30)
    assert (tmp_path / "reached").is_file()
    with pytest.raises(RuntimeError, match="alone failed"):  # the server is gone by then
        run([uses, alone], lambda _: None, ready_timeout=30)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 1)  # and stopped at the end


def test_the_loop_ends_with_every_eval_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = [hinted(f"p{i}", correct=False, tool_calls=0, hints=0) for i in range(4)]
    after = [hinted(f"p{i}", correct=i == 0, hints=0) for i in range(4)]
    write_trajectories(before, tmp_path / "eval-0.jsonl")
    write_trajectories(after, tmp_path / "eval-1.jsonl")
    show_loop(tmp_path, 1, [Timing(step="round 1: train", seconds=61.0, skipped=False)])
    shown = capsys.readouterr().out
    assert "baseline" in shown and "round 1" in shown and "61" in shown, shown
    record = json.loads((tmp_path / "loop.json").read_text())
    assert record["evals"]["baseline"]["tool_use_rate"] == 0.0
    assert record["evals"]["round 1"]["tool_use_rate"] == 1.0
    assert record["evals"]["round 1"]["accuracy"] == 0.25
    assert record["steps"] == [{"step": "round 1: train", "seconds": 61.0, "skipped": False}]


def test_the_example_file_plans_commands_that_all_parse() -> None:
    """examples/rft.toml is the README's experiment: each of its steps' flags must exist."""
    import typer
    from typer.core import TyperGroup

    from startbox.cli import app

    root = typer.main.get_command(app)
    config = LoopConfig.load(Path(__file__).parents[3] / "examples" / "rft.toml")
    steps = plan(config)
    assert len(steps) == 3 + 5 * config.rounds
    for argv in [s.argv for s in steps] + [s.server for s in steps if s.server]:
        command, args = root, argv[3:]  # past `python -m startbox`
        parent = None
        while isinstance(command, TyperGroup):
            parent = command.context_class(command, parent=parent, info_name=command.name)
            _, found, args = command.resolve_command(parent, args)
            assert found is not None, argv
            command = found
        ctx = command.make_context(command.name, list(args), parent=parent)
        assert not ctx.args, (argv, ctx.args)
