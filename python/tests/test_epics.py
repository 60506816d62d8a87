"""skyrun.epics devices (EpicsMotor, EpicsSignal, EpicsSignalRO) on real IOCs
started here (epics/tests/iocs: a caproto motor-record IOC and a
pythonSoftIOC, each on its own loopback port), in Bluesky plans on skyrun's
RunEngine, next to ophyd's devices of the same names on the same IOCs run
by Bluesky's RunEngine."""

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import pytest

IOCS = pathlib.Path(__file__).resolve().parents[2] / "epics" / "tests" / "iocs"


def _free_port():
    for _ in range(100):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")


REPEATER = _free_port()


class Ioc:
    """An IOC process on its own port; READY on stdout once it serves."""

    def __init__(self, script, prefix, *args, pva_port=None):
        self.port = _free_port()
        self.prefix = prefix
        pva = {} if pva_port is None else dict(
            EPICS_PVAS_INTF_ADDR_LIST="127.0.0.1", EPICS_PVAS_SERVER_PORT=str(pva_port),
            EPICS_PVAS_BROADCAST_PORT=str(_free_port()), EPICS_PVA_AUTO_ADDR_LIST="NO", EPICS_PVA_ADDR_LIST="127.0.0.1")
        env = dict(os.environ, **pva, EPICS_CA_SERVER_PORT=str(self.port), EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
                   EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO", EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
                   EPICS_CAS_BEACON_PORT=str(REPEATER), EPICS_CA_REPEATER_PORT=str(REPEATER),
                   EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST="127.0.0.1")
        self.proc = subprocess.Popen([sys.executable, str(IOCS / script), prefix, *map(str, args)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        ready = threading.Event()

        def watch(out):
            for line in out:  # read to the end: the pipe never fills
                if line.strip() == "READY":
                    ready.set()

        threading.Thread(target=watch, args=(self.proc.stdout,), daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise RuntimeError(f"{script} did not say READY within 60 s")

    def pv(self, name):
        return f"{self.prefix}:{name}"

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def iocs():
    pid = os.getpid()
    motors = Ioc("motor_ioc.py", f"PYM{pid}", 2, "--velocity", 20)
    signals = Ioc("signals_ioc.py", f"PYS{pid}", 3)
    # Both clients (skyrun's, pyepics') read these when they start: before any device.
    os.environ.update(EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_REPEATER_PORT=str(REPEATER),
                      EPICS_CA_ADDR_LIST=f"127.0.0.1:{motors.port} 127.0.0.1:{signals.port}")
    yield motors, signals
    motors.stop()
    signals.stop()


def _ophyd(code, timeout=120):
    """Runs `code` (which sets `result`) with ophyd and pyepics in a process
    of its own, and returns `result`: pyepics' libca can crash a process
    whose IOCs go away while its threads still fetch (seen here), and that
    must not take the test run with it."""
    script = "import json\n" + code + "\nprint('RESULT ' + json.dumps(result), flush=True)\n"
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ))
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            import json

            return json.loads(line[len("RESULT "):])
    raise AssertionError(f"the ophyd process gave no result (exit {p.returncode}): {p.stderr[-2000:]}")


def _docs(RE, plan):
    docs = []
    RE(plan, lambda name, doc: docs.append((name, doc)))
    return docs


def _events(docs):
    return [d for n, d in docs if n == "event"]


def _descriptor(docs):
    return next(d for n, d in docs if n == "descriptor")


def test_a_scan_records_the_positions_it_asked_for_as_ophyds_devices_do(iocs):
    from skyrun import RunEngine
    from skyrun.epics import EpicsMotor, EpicsSignalRO

    motors, signals = iocs
    m1 = EpicsMotor(motors.pv("MTR1"), name="m1")
    ao = EpicsSignalRO(signals.pv("AO:00000"), name="ao")
    docs = _docs(RunEngine(), bp.scan([ao], m1, -1, 1, 5))
    assert [e["data"]["m1"] for e in _events(docs)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert m1.position == 1.0
    stop = docs[-1][1]
    assert (docs[-1][0], stop["exit_status"]) == ("stop", "success")

    # ophyd's devices of the same names on the same records, on Bluesky's RunEngine.
    odocs = _ophyd(f"""
import ophyd
import bluesky.plans as bp
from bluesky import RunEngine
om1 = ophyd.EpicsMotor({motors.pv("MTR1")!r}, name="m1")
oao = ophyd.EpicsSignalRO({signals.pv("AO:00000")!r}, name="ao")
om1.wait_for_connection(timeout=10)
oao.wait_for_connection(timeout=10)
result = []
RE = RunEngine()
RE(bp.scan([oao], om1, -1, 1, 5), lambda name, doc: result.append((name, doc)))
om1.destroy()
oao.destroy()
""")
    assert [e["data"]["m1"] for e in _events(odocs)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    # The same readings, from the same PVs, described alike.
    for mine, theirs in zip(_events(docs), _events(odocs)):
        assert set(mine["data"]) == set(theirs["data"]) == {"ao", "m1", "m1_user_setpoint"}
        assert mine["data"] == theirs["data"]
    d, od = _descriptor(docs)["data_keys"], _descriptor(odocs)["data_keys"]
    for key in ("m1", "m1_user_setpoint", "ao"):
        for field in ("source", "dtype", "shape", "units", "precision"):
            assert d[key].get(field) == od[key].get(field), (key, field, d[key], od[key])
    assert d["m1"]["source"] == f"PV:{motors.pv('MTR1.RBV')}"


def test_a_plan_monitoring_the_10_hz_record_records_the_iocs_updates_until_unmonitor(iocs):
    from skyrun import RunEngine
    from skyrun.epics import EpicsSignalRO

    _, signals = iocs
    tick = EpicsSignalRO(signals.pv("TICK"), name="tick")
    docs, at_unmonitor = [], []

    def monitor_events():
        return [d for n, d in list(docs) if n == "event"]

    def plan():
        yield from bps.open_run()
        yield from bps.monitor(tick, name="tick_monitor")
        deadline = time.monotonic() + 20
        while len(monitor_events()) < 4:
            assert time.monotonic() < deadline, "4 monitor events within 20 s"
            yield from bps.sleep(0.05)
        yield from bps.unmonitor(tick)
        at_unmonitor.append(len(monitor_events()))
        last = (yield from bps.rd(tick))
        deadline = time.monotonic() + 20
        # The record counts on (3 more), the stream does not.
        while (yield from bps.rd(tick)) < last + 3:
            assert time.monotonic() < deadline, "TICK counting on within 20 s"
            yield from bps.sleep(0.05)
        yield from bps.close_run()

    RunEngine()(plan(), lambda name, doc: docs.append((name, doc)))
    events = monitor_events()
    assert len(events) == at_unmonitor[0] >= 4
    descriptor = _descriptor(docs)
    assert descriptor["name"] == "tick_monitor"
    assert descriptor["data_keys"]["tick"]["source"] == f"PV:{signals.pv('TICK')}"
    assert descriptor["data_keys"]["tick"]["units"] == "counts"
    values = [e["data"]["tick"] for e in events]
    stamps = [e["timestamps"]["tick"] for e in events]
    # The IOC's count and its record's timestamps, in order.
    assert values == sorted(values) and values[-1] > values[0], values
    assert stamps == sorted(stamps) and stamps[0] > 1.7e9, stamps
    stop = docs[-1][1]
    assert stop["num_events"]["tick_monitor"] == len(events)


def test_an_epics_signal_set_completes_on_the_ioc_and_ophyd_reads_it(iocs):
    from skyrun import RunEngine
    from skyrun.epics import EpicsSignal

    _, signals = iocs
    slow = EpicsSignal(signals.pv("SLOW"), name="slow", put_complete=True)
    ao1 = EpicsSignal(signals.pv("AO:00001"), name="ao1", tolerance=1e-9)
    assert (slow.put_complete, ao1.setpoint_pvname) == (True, signals.pv("AO:00001"))
    RE = RunEngine()
    t0 = time.monotonic()
    RE(bps.mv(slow, 2.5, ao1, -3.25))
    # SLOW's put callback comes 0.3 s after the write: mv waited for it.
    assert time.monotonic() - t0 >= 0.3
    assert (slow.get(), ao1.get()) == (2.5, -3.25)
    theirs = _ophyd(f"""
import ophyd
theirs = ophyd.EpicsSignalRO({signals.pv("AO:00001")!r}, name="theirs")
theirs.wait_for_connection(timeout=10)
result = theirs.get()
theirs.destroy()
""")
    assert theirs == -3.25
    ao1.put(4.0)
    assert ao1.get() == 4.0


def test_a_pv_that_does_not_connect_raises_timeout_error_naming_it(iocs):
    from skyrun.epics import EpicsMotor, EpicsSignalRO, connect

    _, signals = iocs
    with pytest.raises(TimeoutError) as e:
        EpicsSignalRO(signals.pv("NOPE"), name="nope", connection_timeout=0.5)
    assert f"{signals.pv('NOPE')} (nope)" in str(e.value)
    with pytest.raises(TimeoutError) as e:
        connect([{"kind": "epics_signal", "name": "a", "read_pv": signals.pv("AO:00002"), "read_only": True},
                 {"kind": "epics_signal", "name": "b", "read_pv": signals.pv("B"), "read_only": True},
                 {"kind": "epics_signal", "name": "c", "read_pv": signals.pv("C"), "read_only": True}], 0.5)
    assert f"2 PVs did not connect within 0.5 s: {signals.pv('B')} (b), {signals.pv('C')} (c)" in str(e.value)
    with pytest.raises(ValueError, match="name= is required"):
        EpicsMotor(signals.pv("X"))
    with pytest.raises(TypeError, match="unsupported keyword argument"):
        EpicsSignalRO(signals.pv("AO:00000"), name="x", bogus=1)


def test_load_devices_connects_the_epics_tables_of_a_device_file(iocs, tmp_path):
    from skyrun import RunEngine, load_devices
    from skyrun.epics import EpicsMotor, EpicsSignalRO

    motors, signals = iocs
    path = tmp_path / "beamline.toml"
    path.write_text(f"""
[[motor]]
name = "sim"

[[epics_motor_family]]
prefix = "m"
count = 2
first = 1
pv = "{motors.prefix}:MTR{{i}}"

[[epics_signal_family]]
prefix = "ao"
count = 3
read_pv = "{signals.prefix}:AO:{{i:05}}"
read_only = true
""")
    devs = load_devices(path)
    assert list(devs) == ["sim", "m1", "m2", "ao0", "ao1", "ao2"]
    assert isinstance(devs["m2"], EpicsMotor) and devs["m2"].prefix == motors.pv("MTR2")
    assert isinstance(devs["ao2"], EpicsSignalRO) and devs["ao2"].pvname == signals.pv("AO:00002")
    docs = _docs(RunEngine(), bp.scan([devs["ao0"], devs["ao2"]], devs["m2"], 0.5, 1.5, 3))
    assert [e["data"]["m2"] for e in _events(docs)] == [0.5, 1.0, 1.5]


def test_a_pva_pv_reads_and_sets_over_pvaccess():
    from skyrun import RunEngine
    from skyrun.epics import EpicsSignal

    port = _free_port()
    ioc = Ioc("signals_ioc.py", f"PYV{os.getpid()}", 2, "--pva", pva_port=port)
    try:
        # Read by the PVA client when it starts (with the first pva:// name).
        os.environ.update(EPICS_PVA_AUTO_ADDR_LIST="NO", EPICS_PVA_ADDR_LIST="",
                          EPICS_PVA_NAME_SERVERS=f"127.0.0.1:{port}")
        # Set done when the readback (the monitor) shows the value: the read after it sees it.
        ao = EpicsSignal(f"pva://{ioc.pv('AO:00001')}", name="ao", tolerance=1e-9)
        docs = _docs(RunEngine(), bp.list_scan([ao], ao, [1.5, -2.0]))
        assert [e["data"]["ao"] for e in _events(docs)] == [1.5, -2.0]
        keys = _descriptor(docs)["data_keys"]["ao"]
        assert (keys["source"], keys["units"], keys["precision"]) == (f"PV:pva://{ioc.pv('AO:00001')}", "mm", 3)
        assert ao.get() == -2.0
    finally:
        ioc.stop()
