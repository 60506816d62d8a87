"""blueapi 1.21.1's own CLI against ``python -m skyrun service`` (Python
plans, ophyd.sim and ophyd-async devices), no message bus configured: plans,
devices, state, run in the foreground (over the WebSocket), bad
parameters, run in the background, pause, state, resume, abort. Skipped
when ``SKYRUN_BLUEAPI`` (the CLI) is unset."""

from service_support import needs_blueapi, service  # noqa: F401 (fixture)


def test_blueapis_cli_drives_python_plans(service):
    needs_blueapi()
    plans = service.blueapi_ok("plans")
    assert "count_plan" in plans.splitlines() and "move_then_count" in plans.splitlines(), plans
    assert "Take num readings of the detectors." in plans, plans
    devices = service.blueapi_ok("devices")
    assert "stage_x" in devices and "Movable" in devices, devices
    assert service.blueapi_ok("state").strip() == "IDLE"

    fg = service.blueapi("run", "-i", "cm1-1", "count_plan", '{"detectors": ["det"], "num": 3}')
    assert fg.returncode == 0 and "Plan succeeded" in fg.stdout, fg.stdout + fg.stderr

    bad = service.blueapi("run", "-i", "cm1-1", "count_plan", '{"detectors": ["det"], "num": "x"}')
    assert bad.returncode != 0
    assert "Invalid value 'x' for field num: Input should be a valid integer" in bad.stderr, bad.stderr
    unknown = service.blueapi("run", "-i", "cm1-1", "nope")
    assert "Plan 'nope' was not recognised" in unknown.stderr, unknown.stderr

    until_told = '{"detectors": ["det"], "num": 100000, "delay": 0.05}'
    task_id = service.blueapi_ok("run", "--bg", "-i", "cm1-1", "count_plan", until_told).strip()
    service.blueapi_ok("pause")
    service.wait_state("PAUSED")
    assert service.blueapi_ok("state").strip() == "PAUSED"
    service.blueapi_ok("resume")
    service.wait_state("RUNNING")
    code, task = service.get(f"/tasks/{task_id}")
    assert (task["is_complete"], task["errors"]) == (False, []), task
    service.blueapi_ok("abort", "beam lost")
    task = service.wait_complete(task_id)
    assert task["outcome"] == {"outcome": "error", "type": "RequestAbort", "message": "beam lost"}, task
    service.wait_state("IDLE")
