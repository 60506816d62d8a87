"""``python -m skyrun run PLAN.py --devices DEVICES.toml``."""

import json
import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"

DEVICES = '[[motor]]\nname = "motor"\n[[detector]]\nname = "det"\nmotor = "motor"\n'


def skyrun(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "skyrun", "run", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_the_example_plan_file_runs_and_writes_its_documents(tmp_path):
    (tmp_path / "devices.toml").write_text(DEVICES)
    docs = tmp_path / "docs.jsonl"
    p = skyrun(EXAMPLES / "scan_plan.py", "--devices", tmp_path / "devices.toml", "--documents", docs, "--profile",
               "--trace", f"jsonl:{tmp_path / 'spans.jsonl'}")
    assert p.returncode == 0, p.stderr
    assert "2 run(s), 16 events" in p.stdout and "success, success" in p.stdout
    assert "Bluesky RunEngine set" in p.stdout and "profile:" in p.stdout
    lines = [json.loads(l) for l in docs.read_text().splitlines()]
    assert [n for n, _ in lines].count("start") == 2 and lines[0][1]["purpose"] == "example"
    assert lines[0][1]["plan_name"] == "scan" and lines[-1][0] == "stop"
    spans = [json.loads(l) for l in (tmp_path / "spans.jsonl").read_text().splitlines()]
    assert {s["name"] for s in spans} >= {"Bluesky RunEngine run", "Bluesky RunEngine set", "Ophyd Status"}


def test_bad_input_exits_2_naming_the_problem(tmp_path):
    (tmp_path / "bad.toml").write_text('[[detector]]\nname = "det"\nmotor = "nope"\n')
    p = skyrun(EXAMPLES / "scan_plan.py", "--devices", tmp_path / "bad.toml")
    assert p.returncode == 2 and "bad.toml:3:" in p.stderr and "unknown device 'nope'" in p.stderr, p.stderr
    (tmp_path / "devices.toml").write_text(DEVICES)
    (tmp_path / "noplan.py").write_text("x = 1\n")
    p = skyrun(tmp_path / "noplan.py", "--devices", tmp_path / "devices.toml")
    assert p.returncode == 2 and "defines no 'plan'" in p.stderr, p.stderr
    p = skyrun(tmp_path / "missing.py")
    assert p.returncode == 2 and "no such plan file" in p.stderr


def test_a_failing_plan_exits_1_with_its_reason(tmp_path):
    (tmp_path / "devices.toml").write_text('[[motor]]\nname = "motor"\nlimits = [-1.0, 1.0]\n')
    (tmp_path / "fail.py").write_text("import bluesky.plans as bp\ndef plan():\n    yield from bp.scan([], motor, 0, 5, 3)\n")
    p = skyrun(tmp_path / "fail.py", "--devices", tmp_path / "devices.toml")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "outside the limits" in p.stderr and ": fail" in p.stdout
