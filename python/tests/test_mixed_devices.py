"""Python objects that follow ophyd's protocol (ophyd.sim's own devices, a
user's class) run as actors, mixed with skyrun's Rust devices in one plan;
skyrun.sim devices have ophyd.sim's constructors, names and keys."""

import math

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import ophyd.sim as osim
import pytest

import skyrun.sim as ssim
from skyrun import RunEngine, load_devices

from conftest import collect, validate


def test_ophyd_and_skyrun_devices_in_one_scan():
    RE = RunEngine()
    osim.motor1.set(0).wait(5)
    _, docs = collect(RE, bp.grid_scan([osim.det1, ssim.det2], osim.motor1, -1, 1, 3, ssim.motor2, 0, 2, 2))
    validate(docs)
    events = [d for n, d in docs if n == "event"]
    assert len(events) == 6
    assert set(events[0]["data"]) == {"det1", "det2", "motor1", "motor1_setpoint", "motor2", "motor2_setpoint"}
    # ophyd.sim's det1 (Python) follows ophyd's motor1 (Python); skyrun's det2 (Rust) follows motor2 (Rust).
    for e in events:
        x1, x2 = e["data"]["motor1"], e["data"]["motor2"]
        assert e["data"]["det1"] == pytest.approx(5 * math.exp(-(x1**2) / (2 * 0.5**2)))
        assert e["data"]["det2"] == pytest.approx(2 * math.exp(-((x2 - 1) ** 2) / (2 * 2**2)))
    desc = next(d for n, d in docs if n == "descriptor")
    assert set(desc["configuration"]) == {"det1", "det2", "motor1", "motor2"}
    assert desc["configuration"]["det1"]["data"]["det1_Imax"] == 5


def test_a_users_own_class_is_a_device():
    class Thermometer:
        """Only what ophyd's Readable protocol asks for."""

        name = "thermo"
        parent = None
        hints = {"fields": ["thermo"]}

        def __init__(self):
            self.reads = 0

        def read(self):
            self.reads += 1
            return {"thermo": {"value": 4.2 + self.reads, "timestamp": 1.0}}

        def describe(self):
            return {"thermo": {"source": "user", "dtype": "number", "shape": []}}

    t = Thermometer()
    RE = RunEngine()
    _, docs = collect(RE, bp.count([t, ssim.det], num=2))
    validate(docs)
    assert [d["data"]["thermo"] for n, d in docs if n == "event"] == [5.2, 6.2]


def test_a_failing_python_device_fails_the_run_with_its_name_and_the_engine_goes_on():
    class Broken:
        name = "broken"
        parent = None

        def read(self):
            raise OSError("cable unplugged")

        def describe(self):
            return {"broken": {"source": "x", "dtype": "number", "shape": []}}

    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    # The exception the device raised, as raised (as Bluesky gives it back),
    # with a note naming the device and the message.
    with pytest.raises(OSError, match="cable unplugged") as info:
        RE(bp.count([Broken()]))
    assert info.value.__notes__ == ["skyrun: raised by broken during 'read'"]
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "fail"
    # Bluesky's run_wrapper closes the run with str(exception).
    assert docs[-1][1]["reason"] == "cable unplugged"
    assert len(RE(bp.count([ssim.det]))) == 1


def test_sim_devices_have_ophyd_sims_names_keys_and_hints():
    for name in ("motor", "motor1", "motor2", "motor3", "det", "det1", "det2", "det3", "noisy_det", "flyer1"):
        assert getattr(ssim, name).name == getattr(osim, name).name
    assert set(ssim.motor.read()) == set(osim.motor.read()) == {"motor", "motor_setpoint"}
    assert set(ssim.det.read()) == set(osim.det.read()) == {"det"}
    assert ssim.det.hints == osim.det.hints and ssim.motor.hints == osim.motor.hints
    assert ssim.det1._motor is ssim.motor1
    m = ssim.SynAxis(name="m_new", value=1.5)
    assert m.position == 1.5 and m.read()["m_new"]["value"] == 1.5
    st = m.set(3)
    st.wait(5)
    assert st.done and st.success and m.position == 3
    with pytest.raises(TypeError, match="SynAxis"):
        ssim.SynGauss("g", osim.motor, "motor", center=0, Imax=1)
    with pytest.raises(ValueError, match="noise"):
        ssim.SynGauss("g", m, "m_new", center=0, Imax=1, noise="pink")


def test_a_device_method_called_inside_a_running_plan_fails_clearly():
    RE = RunEngine()

    def plan():
        yield from bps.null()
        ssim.det.read()

    with pytest.raises(RuntimeError, match="inside a running plan"):
        RE(plan())


def test_load_devices_reads_a_skyrun_device_file(tmp_path):
    f = tmp_path / "beamline.toml"
    f.write_text('[[motor]]\nname = "x"\nposition = 1.0\n[[detector]]\nname = "d"\nmotor = "x"\ncenter = 1.0\n')
    devs = load_devices(f)
    assert sorted(devs) == ["d", "x"]
    RE = RunEngine()
    _, docs = collect(RE, bp.count([devs["d"]]))
    assert [d["data"]["d"] for n, d in docs if n == "event"] == [1.0]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[detector]]\nname = "d"\nmotor = "nope"\n')
    with pytest.raises(ValueError, match=r"bad.toml:3:\d+: unknown device 'nope'"):
        load_devices(bad)


def test_fly_on_a_skyrun_flyer():
    RE = RunEngine()
    _, docs = collect(RE, bp.fly([ssim.flyer1]))
    validate(docs)
    # Bluesky 1.15's collect: the flyer's events as one event page.
    assert [n for n, _ in docs] == ["start", "descriptor", "event_page", "stop"]
    page = docs[2][1]
    assert page["seq_num"] == list(range(1, 21))
    assert page["descriptor"] == docs[1][1]["uid"]
    assert docs[-1][1]["exit_status"] == "success"


def test_bps_stop_stops_python_and_rust_devices_and_refuses_what_has_no_stop():
    class Stoppable:
        name = "stoppable"
        parent = None

        def __init__(self):
            self.stops = []

        def stop(self, *, success=False):
            self.stops.append(success)

    RE = RunEngine()
    dev = Stoppable()

    def plan():
        yield from bps.stop(dev)
        yield from bps.stop(ssim.motor1)

    RE(plan())
    # RunEngine._stop calls obj.stop(): ophyd's default, success=False.
    assert dev.stops == [False]
    # Every ophyd Device has stop(), detectors too (a no-op), as ophyd.sim's det1.
    RE(bps.stop(ssim.det1))

    class NoStop:
        name = "nostop"
        parent = None

        def read(self):
            return {"nostop": {"value": 1, "timestamp": 1.0}}

        def describe(self):
            return {"nostop": {"source": "x", "dtype": "number", "shape": []}}

    # Bluesky's check_supports(obj, Stoppable) refuses an object without stop().
    with pytest.raises(Exception, match="nostop cannot be stopped"):
        RE(bps.stop(NoStop()))
    # The engine is usable after the failed run.
    RE(bps.stop(dev))
    assert dev.stops == [False, False]


def test_bps_wait_returns_done_and_keeps_the_group_when_it_does_not_fail_on_a_timeout():
    RE = RunEngine()
    slow = ssim.SynAxis(name="slow", delay=60)
    fast = ssim.SynAxis(name="fast")
    seen = []

    def plan():
        yield from bps.abs_set(slow, 1, group="slow")
        for _ in range(2):
            # The status stays in its group: the second wait waits on it too.
            seen.append((yield from bps.wait(group="slow", timeout=0.01, error_on_timeout=False)))
        yield from bps.abs_set(fast, 1, group="fast")
        seen.append((yield from bps.wait(group="fast", watch=["slow"])))

    RE(plan())
    assert seen == [False, False, True]
