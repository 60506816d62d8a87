"""The EPICS group-move bench (BENCHMARKS.md): N motors of one caproto
motor-record IOC (epics/tests/iocs/motor_ioc.py, at a velocity where a
move takes one IOC tick) moved together by ``bps.mv(m1, x, m2, x, ...)``,
MOVES times, in one session:

- ophyd 1.11.2 ``EpicsMotor`` (pyepics) on Bluesky's RunEngine;
- skyrun's ``skyrun.epics.EpicsMotor`` on skyrun's Python RunEngine;
- the ``skyrun`` binary: a plan file of MOVES ``mv`` steps on an
  ``[[epics_motor_family]]`` (one process: connect, run; wall time).

    python group_move.py [N [MOVES [SKYRUN_BINARY]]]

Needs ophyd, pyepics, bluesky, caproto and the skyrun package in this
Python (python/run-tests' venv has them all).
"""
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

here = pathlib.Path(__file__).resolve().parent
n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
moves = int(sys.argv[2]) if len(sys.argv) > 2 else 20
binary = sys.argv[3] if len(sys.argv) > 3 else str(here.parents[1] / "target/release/skyrun")
sys.path.insert(0, str(here.parents[1] / "python" / "tests"))
from test_epics import REPEATER, Ioc  # noqa: E402 (the tests' IOC starter)

ioc = Ioc("motor_ioc.py", f"GM{os.getpid()}", n, "--velocity", 1000)
os.environ.update(EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_REPEATER_PORT=str(REPEATER),
                  EPICS_CA_ADDR_LIST=f"127.0.0.1:{ioc.port}")
positions = [0.5 if k % 2 == 0 else 1.0 for k in range(moves)]


def group_moves(RE, motors):
    import bluesky.plan_stubs as bps

    times = []
    for x in positions:
        args = [a for m in motors for a in (m, x)]
        t = time.perf_counter()
        RE(bps.mv(*args))
        times.append(time.perf_counter() - t)
    for m in motors:
        assert abs(m.position - positions[-1]) < 1e-9, (m.name, m.position)
    return statistics.median(times), min(times)


def report(who, connect, med, best):
    print(f"{who}: connect {n} motors {connect:.3f} s; group move of {n} motors: median {med * 1e3:.0f} ms, "
          f"best {best * 1e3:.0f} ms ({moves} moves)", flush=True)


try:
    import ophyd
    from bluesky import RunEngine as BlueskyRunEngine

    t = time.perf_counter()
    om = [ophyd.EpicsMotor(ioc.pv(f"MTR{i}"), name=f"m{i}") for i in range(1, n + 1)]
    for m in om:
        m.wait_for_connection(timeout=60)
    report("ophyd 1.11.2 EpicsMotor, Bluesky RunEngine", time.perf_counter() - t, *group_moves(BlueskyRunEngine(), om))
    for m in om:  # before the IOC goes: pyepics complains of channels it loses
        m.destroy()

    import skyrun.epics
    from skyrun import RunEngine

    t = time.perf_counter()
    sm = list(skyrun.epics.connect([{"kind": "epics_motor", "name": f"m{i}", "prefix": ioc.pv(f"MTR{i}")}
                                    for i in range(1, n + 1)], 30).values())
    report("skyrun.epics EpicsMotor, skyrun Python RunEngine", time.perf_counter() - t, *group_moves(RunEngine(), sm))

    if os.path.exists(binary):
        with tempfile.TemporaryDirectory() as d:
            dev = pathlib.Path(d, "motors.toml")
            dev.write_text(f'[[epics_motor_family]]\nprefix = "m"\ncount = {n}\nfirst = 1\npv = "{ioc.prefix}:MTR{{i}}"\n')
            plan = pathlib.Path(d, "moves.toml")
            plan.write_text("".join(f"[[steps]]\nstub = 'mv'\nmotors = 'm'\nposition = {x}\n" for x in positions))
            t = time.perf_counter()
            subprocess.run([binary, "check", str(plan), "--devices", str(dev), "--connect-timeout", "30"],
                           check=True, stdout=subprocess.DEVNULL)
            check = time.perf_counter() - t
            t = time.perf_counter()
            subprocess.run([binary, "run", str(plan), "--devices", str(dev), "--quiet", "--connect-timeout", "30"],
                           check=True)
            total = time.perf_counter() - t
            print(f"skyrun binary: `skyrun check` (start, connect {n} motors) {check:.3f} s; `skyrun run` of {moves} "
                  f"group moves {total:.3f} s wall, i.e. {(total - check) / moves * 1e3:.0f} ms per move after "
                  f"subtracting the check's time", flush=True)
finally:
    ioc.stop()
