"""``python -m skyrun service`` with a plain HTTP client and a WebSocket:
Python plan functions listed with the JSON schema blueapi builds from their
signatures, a plan run on ophyd.sim devices sending its documents, 422s
naming the bad parameter, pause and resume of a Python plan (it resumes
and ends in success), abort and stop, a failing plan's exception as the
outcome, and one trace from the client's ``traceparent`` to the run."""

import json
import pathlib
import subprocess
import sys
import time

from service_support import BLUEAPI, PLANS, Service, needs_blueapi, service  # noqa: F401 (fixture)

# A count that runs until told (100,000 points 0.05 s apart).
UNTIL_TOLD = {"detectors": ["det"], "num": 100000, "delay": 0.05}

NEW_PLAN = '''

def count_twice(detectors: list[Readable]) -> MsgGenerator:
    """Count twice."""
    yield from bp.count(detectors, num=2)
'''


def test_plans_and_devices_are_listed_as_blueapi_lists_them(service):
    code, r = service.get("/plans")
    assert code == 200, r
    plans = {p["name"]: p for p in r["plans"]}
    # Only the module's own plan functions: not the imported `scan`, `_helper` or a non-plan function.
    assert set(plans) == {"count_plan", "move_then_count", "fails"}, plans
    count = plans["count_plan"]
    assert count["description"] == "Take num readings of the detectors."
    readable = sorted(["det", "det1", "motor", "motor1", "stage_x", "sig"])
    assert count["schema"] == {
        "additionalProperties": False,
        "properties": {
            "detectors": {"items": {"enum": readable, "type": "bluesky.protocols.Readable"},
                          "title": "Detectors", "type": "array"},
            "num": {"default": 1, "title": "Num", "type": "integer"},
            "delay": {"default": 0.0, "title": "Delay", "type": "number"},
        },
        "required": ["detectors"],
        "title": "count_plan",
        "type": "object",
    }
    motor = plans["move_then_count"]["schema"]["properties"]["motor"]
    assert motor["type"] == "bluesky.protocols.Movable" and {"motor", "motor1", "stage_x"} <= set(motor["enum"])
    assert "det" not in motor["enum"], "a detector cannot be moved"
    assert service.get("/plans/count_plan") == (200, count)
    assert service.get("/plans/scan")[0] == 404

    code, r = service.get("/devices")
    assert code == 200, r
    devices = {d["name"]: d for d in r["devices"]}
    assert set(devices) == {"det", "det1", "motor", "motor1", "stage_x", "sig"}, devices
    names = lambda d: {p["name"] for p in devices[d]["protocols"]}  # noqa: E731
    assert {"Readable", "Movable", "Stageable"} <= names("motor")
    assert "Movable" not in names("det") and {"Readable", "Triggerable"} <= names("det")
    assert {"Readable", "Movable", "Device"} <= names("stage_x"), "ophyd-async: its Device protocol too"
    assert service.get("/devices/det") == (200, devices["det"])
    assert service.get("/devices/nope")[0] == 404


def test_a_python_plan_runs_on_ophyd_sim_devices_and_its_documents_reach_the_websocket(service):
    ws = service.run_plan({"name": "move_then_count", "params": {"motor": "motor", "position": 2.5,
                                                                 "detectors": ["det", "motor"]},
                           "instrument_session": "cm1-1"})
    updates = ws.rest()
    docs = [(u["name"], u["doc"]) for u in updates if "doc" in u]
    assert [n for n, _ in docs] == ["start", "descriptor", "event", "stop"], docs
    task_id = updates[0]["task_status"]["task_id"]
    start, event, stop = docs[0][1], docs[2][1], docs[3][1]
    assert (start["task_id"], start["instrument_session"], start["plan_name"]) == (task_id, "cm1-1", "count")
    assert event["data"]["motor"] == 2.5, "the motor was moved before the count"
    assert "det" in event["data"] and stop["exit_status"] == "success"
    assert all(u["task_id"] == task_id for u in updates if "doc" in u)
    last = updates[-1]
    assert last["state"] == "IDLE" and last["task_status"] == {
        "task_id": task_id, "task_complete": True, "task_failed": False,
        "result": {"outcome": "success", "result": 2, "type": "int"},
    }, last
    task = service.wait_complete(task_id)
    assert task["outcome"] == {"outcome": "success", "result": 2, "type": "int"} and task["errors"] == []
    assert task["task"]["metadata"]["instrument_session"] == "cm1-1"


def test_bad_parameters_are_422_naming_the_field_and_unknown_plans_404(service):
    def errors(params, name="count_plan"):
        code, r = service.call("POST", "/tasks", {"name": name, "params": params, "instrument_session": "cm1-1"})
        assert code == 422, (code, r)
        return [(e["loc"], e["type"], e["msg"]) for e in r["detail"]]

    assert errors({"detectors": ["det"], "num": "x"}) == [
        (["body", "params", "num"], "int_parsing", "Input should be a valid integer, unable to parse string as an "
                                                   "integer")]
    assert errors({"detectors": ["nope"]}) == [
        (["body", "params", "detectors", 0], "value_error", "Value error, Device nope cannot be found")]
    [(loc, kind, msg)] = errors({"motor": "det", "position": 1, "detectors": []}, "move_then_count")
    assert (loc, kind) == (["body", "params", "motor"], "value_error") and "is not of type" in msg, msg
    assert errors({}) == [(["body", "params", "detectors"], "missing", "Field required")]
    assert errors({"detectors": ["det"], "colour": "red"}) == [
        (["body", "params", "colour"], "extra_forbidden", "Extra inputs are not permitted")]
    code, r = service.call("POST", "/tasks", {"name": "nope", "params": {}, "instrument_session": "cm1-1"})
    assert (code, r) == (404, {"detail": "Item not found"})
    assert service.get("/tasks") == (200, {"tasks": []}), "nothing was created"


def test_pause_resume_stop_and_abort_a_python_plan_in_one_trace_from_the_client(service):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"
    task_id = service.submit("count_plan", UNTIL_TOLD)
    service.begin(task_id, {"traceparent": traceparent})
    service.wait_state("RUNNING")
    code, state = service.set_state("PAUSED")
    assert code == 202, state
    service.wait_state("PAUSED")
    code, task = service.get(f"/tasks/{task_id}")
    assert (task["is_complete"], task["errors"]) == (False, []), "paused, neither failed nor complete"
    busy = service.submit("count_plan", {"detectors": ["det"]})
    code, r = service.call("PUT", "/worker/task", {"task_id": busy})
    assert (code, r) == (409, {"detail": "Worker already active"})
    assert service.set_state("PAUSED") == (400, {"detail": "Cannot transition from PAUSED to PAUSED"})
    assert service.set_state("RUNNING")[0] == 202
    service.wait_state("RUNNING")
    assert service.get(f"/tasks/{task_id}")[1]["is_complete"] is False, "resumed, it runs on"
    assert service.set_state("STOPPING")[0] == 202
    task = service.wait_complete(task_id)
    assert task["outcome"] == {"outcome": "success", "result": None, "type": "NoneType"}, task
    service.wait_state("IDLE")

    aborted = service.submit("count_plan", UNTIL_TOLD)
    service.begin(aborted)
    service.wait_state("RUNNING")
    assert service.set_state("ABORTING", reason="beam lost")[0] == 202
    task = service.wait_complete(aborted)
    assert task["outcome"] == {"outcome": "error", "type": "RequestAbort", "message": "beam lost"}, task
    service.wait_state("IDLE")

    spans = service.stop()
    task_span = next(s for s in spans if s["name"] == "task" and s["attributes"]["task_id"] == task_id)
    assert task_span["context"]["trace_id"] == "0x4bf92f3577b34da6a3ce929d0e0e4736"
    assert task_span["parent_id"] == "0x00f067aa0ba902b7", "the client's span parents the task"
    assert task_span["attributes"]["exit_status"] == "success"
    run = [s for s in spans if s["name"] == "Bluesky RunEngine run"
           and s["parent_id"] == task_span["context"]["span_id"]]
    assert len(run) == 1, "the task parents its run"


def test_a_failing_plan_reports_its_exception_and_the_service_goes_on(service):
    task_id = service.submit("fails", {"message": "no sample"})
    service.begin(task_id)
    task = service.wait_complete(task_id)
    assert task["outcome"] == {"outcome": "error", "type": "ValueError", "message": "no sample"}, task
    assert task["errors"] == ["no sample"]
    service.wait_state("IDLE")
    ok = service.submit("count_plan", {"detectors": ["sig", "stage_x"], "num": 2})
    service.begin(ok)
    assert service.wait_complete(ok)["outcome"]["outcome"] == "success"


def wait_environment(service, done):
    end = time.monotonic() + 60
    while True:
        code, env = service.get("/environment")
        assert code == 200, env
        if done(env):
            return env
        assert time.monotonic() < end, f"environment not reloaded within 60 s: {env}"
        time.sleep(0.02)


def test_the_environment_reloads_the_modules_while_idle(service):
    _, first = service.get("/environment")
    assert first == {"environment_id": first["environment_id"], "initialized": True}
    # A new plan in the module: after the reload it is offered, under a new id.
    plans = service.dir / "plans.py"
    plans.write_text(PLANS + NEW_PLAN)
    code, r = service.call("DELETE", "/environment")
    assert (code, r) == (200, {"environment_id": first["environment_id"], "initialized": False})
    second = wait_environment(service, lambda e: e["initialized"] and e["environment_id"] != first["environment_id"])
    code, plan = service.get("/plans/count_twice")
    assert code == 200 and plan["description"] == "Count twice.", plan
    task_id = service.submit("count_twice", {"detectors": ["det"]})
    service.begin(task_id)
    assert service.wait_complete(task_id)["outcome"]["outcome"] == "success"
    service.wait_state("IDLE")

    # A broken module: GET /environment says why, naming it; the service goes on with what it had.
    plans.write_text(PLANS + "raise RuntimeError('broken on purpose')\n")
    assert service.call("DELETE", "/environment")[0] == 200
    broken = wait_environment(service, lambda e: e.get("error_message") is not None)
    assert not broken["initialized"] and broken["environment_id"] != second["environment_id"], broken
    assert "plans.py: RuntimeError: broken on purpose" in broken["error_message"], broken
    assert service.get("/plans/count_twice")[0] == 200

    # Not while a task runs.
    running = service.submit("count_plan", UNTIL_TOLD)
    service.begin(running)
    code, r = service.call("DELETE", "/environment")
    assert (code, r) == (409, {"detail": "Worker busy: the environment is reloaded only while no task runs"})
    assert service.set_state("ABORTING", reason="done")[0] == 202
    service.wait_complete(running)


def test_bad_modules_stop_the_service_from_starting(tmp_path):
    (tmp_path / "plans.py").write_text("def untyped(x) -> 'MsgGenerator':\n    yield\n")
    (tmp_path / "broken.py").write_text("import nowhere_to_be_found\n")

    def start(*args):
        return subprocess.run([sys.executable, "-m", "skyrun", "service", "--bind", "127.0.0.1:0", "--no-state",
                               *map(str, args)], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    p = start("--devices", tmp_path / "broken.py", "--plans", tmp_path / "plans.py")
    assert p.returncode == 2 and "No module named 'nowhere_to_be_found'" in p.stderr, p.stderr
    p = start("--plans", tmp_path / "missing.py")
    assert p.returncode == 2 and "missing.py: FileNotFoundError: no such file" in p.stderr, p.stderr
    (tmp_path / "plans.py").write_text("from bluesky.utils import MsgGenerator\n"
                                       "def untyped(x) -> MsgGenerator:\n    yield\n")
    p = start("--plans", tmp_path / "plans.py")
    assert p.returncode == 2 and "Type annotation is required for 'x' in 'untyped'" in p.stderr, p.stderr


STAGES = """
from bluesky.protocols import Movable
from ophyd_async.core import AsyncStatus, StandardReadable, init_devices, soft_signal_rw


class Stage(StandardReadable, Movable[float]):
    def __init__(self, name=""):
        with self.add_children_as_readables():
            self.x = soft_signal_rw(float)
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def set(self, value: float):
        await self.x.set(value)


with init_devices():
    stage_x = Stage()
    stage_y = Stage()
"""

GRID = """
from typing import Literal, Optional
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator
import bluesky.plans as bp


def grid(detectors: list[Readable], x: Movable, y: Movable[float], n: int = 3, snake: bool = False,
         mode: Literal["fast", "slow"] = "fast", note: Optional[str] = None, md: dict | None = None) -> MsgGenerator:
    '''A grid.'''
    yield from bp.count(detectors)
"""

BLUEAPIS_VIEW = """
import json, sys
sys.path.insert(0, sys.argv[1])
from blueapi.core import BlueskyContext
from blueapi.service.model import DeviceModel
ctx = BlueskyContext()
import beamline, plans
ctx.register_device(beamline.stage_x)
ctx.register_device(beamline.stage_y)
ctx.with_plan_module(plans)
print(json.dumps({"plans": {n: p.model.model_json_schema() for n, p in ctx.plans.items()},
                  "devices": [DeviceModel.from_device(d).model_dump() for d in ctx.devices.values()]}))
"""


def test_the_schemas_and_protocols_are_those_blueapi_finds(tmp_path):
    """The same modules seen by blueapi 1.21.1's own context (in its venv)
    and by the service: the plans' schemas and the devices' protocols."""
    needs_blueapi()
    svc = Service(tmp_path, beamline=STAGES, plans=GRID)
    try:
        ours = {"plans": {p["name"]: p["schema"] for p in svc.get("/plans")[1]["plans"]},
                "devices": svc.get("/devices")[1]["devices"]}
    finally:
        svc.kill()
    python = str(pathlib.Path(BLUEAPI).parent / "python")
    p = subprocess.run([python, "-c", BLUEAPIS_VIEW, str(tmp_path)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    assert ours == theirs


MANAGED = """
from dataclasses import dataclass, field
from ophyd.sim import SynAxis


@dataclass
class Built:
    devices: dict
    build_errors: dict = field(default_factory=dict)
    connection_errors: dict = field(default_factory=dict)


class Manager:
    def build_and_connect(self, *, mock=False, timeout=None, fixtures=None):
        return Built({"m9": SynAxis(name="m9")}, connection_errors={"broken": TimeoutError("no answer")})


devices = Manager()
__all__ = []
"""


def test_a_device_manager_builds_the_devices_as_blueapis_device_manager_source(tmp_path):
    svc = Service(tmp_path, beamline=MANAGED)
    try:
        assert [d["name"] for d in svc.get("/devices")[1]["devices"]] == ["m9"]
        assert "device 'broken' left out (connection error): TimeoutError: no answer" in "".join(svc.log)
        task_id = svc.submit("count_plan", {"detectors": ["m9"], "num": 2})
        svc.begin(task_id)
        assert svc.wait_complete(task_id)["outcome"]["outcome"] == "success"
    finally:
        svc.kill()


UNNAMED = """
from ophyd_async.core import StandardReadable, soft_signal_rw
from ophyd_async.sim import SimMotor


class Counted(StandardReadable):
    # Counts its connections.
    def __init__(self, name=""):
        with self.add_children_as_readables():
            self.connects = soft_signal_rw(int)
        super().__init__(name=name)

    async def connect(self, mock=False, timeout=10.0, force_reconnect=False):
        await super().connect(mock=mock, timeout=timeout, force_reconnect=force_reconnect)
        await self.connects.set(await self.connects.get_value() + 1)


# No init_devices(): neither named nor connected by the module itself.
stage_x = SimMotor(instant=True)
counted = Counted()


class Unplugged(StandardReadable):
    async def connect(self, mock=False, timeout=10.0, force_reconnect=False):
        raise ConnectionError("no IOC answers for BL01:M1")


unplugged = Unplugged()
"""


CONNECTS = PLANS + '''

def connects(device: Readable) -> MsgGenerator[int]:
    """How many times the device was connected."""
    reading = yield from bps.read(device)
    return reading[f"{device.name}-connects"]["value"]
'''


def test_unnamed_ophyd_async_devices_are_named_after_their_variables_and_connected(tmp_path):
    """As blueapi's device manager leaves its devices (named after the
    factory, connected): a module's ophyd-async devices made without a name
    or a connection are known by their variables and connected on the
    engine's loop; one that does not connect is left out, said on stderr."""
    svc = Service(tmp_path, beamline=UNNAMED, plans=CONNECTS)
    try:
        for _ in range(2):
            assert sorted(d["name"] for d in svc.get("/devices")[1]["devices"]) == ["counted", "stage_x"]
            task_id = svc.submit("connects", {"device": "counted"})
            svc.begin(task_id)
            assert svc.wait_complete(task_id)["outcome"] == {"outcome": "success", "result": 1, "type": "int"}
            task_id = svc.submit("move_then_count", {"motor": "stage_x", "position": 2.5, "detectors": ["counted"]})
            svc.begin(task_id)
            assert svc.wait_complete(task_id)["outcome"]["outcome"] == "success"
            svc.wait_state("IDLE")
            # A reload makes new devices: named and connected again, once each.
            first = svc.get("/environment")[1]["environment_id"]
            assert svc.call("DELETE", "/environment")[0] == 200
            wait_environment(svc, lambda e: e["initialized"] and e["environment_id"] != first)
        left_out = "device 'unplugged' left out (connection error): ConnectionError: no IOC answers for BL01:M1"
        assert "".join(svc.log).count(left_out) == 3, svc.log
    finally:
        svc.kill()


BLOCKING = PLANS + '''

def block(seconds: float) -> MsgGenerator:
    """Hold the engine's thread (a plan calling time.sleep instead of yielding bps.sleep)."""
    import time

    time.sleep(seconds)
    yield from bps.null()
'''


def test_healthz_reports_an_engine_held_by_a_python_plan(tmp_path):
    svc = Service(tmp_path, plans=BLOCKING)
    try:
        assert svc.get("/healthz") == (200, {"status": "ok"})
        task_id = svc.submit("block", {"seconds": 8.0})
        svc.begin(task_id)
        end = time.monotonic() + 60
        while True:
            code, r = svc.get("/healthz")
            if code == 503:
                break
            assert not svc.get(f"/tasks/{task_id}")[1]["is_complete"], "the plan ended before /healthz said 503"
            assert time.monotonic() < end, f"/healthz did not report the held engine within 60 s: {code} {r}"
            time.sleep(0.1)
        assert "the RunEngine did not answer within" in r["detail"], r
        assert svc.wait_complete(task_id)["outcome"]["outcome"] == "success"
        assert svc.get("/healthz") == (200, {"status": "ok"})
    finally:
        svc.kill()
