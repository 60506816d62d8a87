"""The EPICS bench, Python's side: ophyd 1.11.2 (pyepics) and ophyd-async
0.21.3 (aioca) on the same IOC as skyrun's (bench/run.sh runs both), and
skyrun's own Python package (skyrun.epics) when this Python has it.

    python compare.py PREFIX N1,N2 PUTS EVENTS [MOTOR_PREFIX MOTORS MOVES]

With a motor IOC (motor_ioc.py at MOTOR_PREFIX): a group move of MOTORS
motors, ``RE(bps.mv(m1, x, m2, x, ...))`` MOVES times (x = 0.5, 1.0, ...),
each move's wall time; as ``skyrun bench --scenario epics`` moves them.
"""
import asyncio
import statistics
import sys
import time

prefix, ns, puts, events = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
mprefix, motors, moves = (sys.argv[5], int(sys.argv[6]), int(sys.argv[7])) if len(sys.argv) > 7 else (None, 0, 0)
pv = lambda i: f"{prefix}:AO:{i:05}"  # noqa: E731
positions = [0.5 if k % 2 == 0 else 1.0 for k in range(moves)]


def group_moves(who, RE, ms, connect, position):
    import bluesky.plan_stubs as bps

    times = []
    for x in positions:
        t = time.perf_counter()
        RE(bps.mv(*[a for m in ms for a in (m, x)]))
        times.append(time.perf_counter() - t)
    for m in ms:
        assert abs(position(m) - positions[-1]) < 1e-9, (m.name, position(m))
    print(f"{who}: group move of {len(ms)} motors: {moves / sum(times):.2f} moves/s, median "
          f"{statistics.median(times) * 1e3:.0f} ms, best {min(times) * 1e3:.0f} ms; connect {connect:.3f} s",
          flush=True)


def ophyd_bench():
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd import EpicsSignal, EpicsSignalRO
    for n in ns:
        t = time.perf_counter()
        sigs = [EpicsSignalRO(pv(i), name=f"s{i}") for i in range(n)]
        for s in sigs:
            s.wait_for_connection(timeout=60)
        print(f"ophyd: connect {n} PVs {time.perf_counter() - t:.3f} s", flush=True)
        for s in sigs:
            s.destroy()
    s = EpicsSignal(pv(0), name="ao", put_complete=True)
    s.wait_for_connection(timeout=10)
    t = time.perf_counter()
    for k in range(puts):
        s.set(k + 0.25).wait(timeout=10)
    print(f"ophyd: sequential put-with-completion EpicsSignal.set().wait() {puts / (time.perf_counter() - t):.0f}/s", flush=True)
    ro = EpicsSignalRO(pv(1), name="ao_ro")
    ro.wait_for_connection(timeout=10)
    RE = RunEngine({})
    t = time.perf_counter()
    RE(count([ro], num=events))
    print(f"ophyd: count of an EpicsSignalRO {events / (time.perf_counter() - t):.0f} events/s", flush=True)
    if mprefix:
        from ophyd import EpicsMotor

        t = time.perf_counter()
        ms = [EpicsMotor(f"{mprefix}:MTR{i}", name=f"m{i}") for i in range(1, motors + 1)]
        for m in ms:
            m.wait_for_connection(timeout=60)
        group_moves("ophyd EpicsMotor", RE, ms, time.perf_counter() - t, lambda m: m.position)
        for m in ms:
            m.destroy()


def ophyd_async_bench():
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd_async.core import init_devices
    from ophyd_async.epics.core import epics_signal_r, epics_signal_rw

    async def connect(n):
        sigs = [epics_signal_r(float, pv(i), name=f"s{i}") for i in range(n)]
        t = time.perf_counter()
        await asyncio.gather(*(s.connect(timeout=60) for s in sigs))
        return time.perf_counter() - t

    RE = RunEngine({})
    for n in ns:
        dt = asyncio.run_coroutine_threadsafe(connect(n), RE.loop).result()
        print(f"ophyd-async: connect {n} PVs {dt:.3f} s", flush=True)

    async def puts_bench():
        s = epics_signal_rw(float, pv(0), name="ao")
        await s.connect(timeout=10)
        t = time.perf_counter()
        for k in range(puts):
            await s.set(k + 0.75)
        return puts / (time.perf_counter() - t)

    rate = asyncio.run_coroutine_threadsafe(puts_bench(), RE.loop).result()
    print(f"ophyd-async: sequential put-with-completion signal.set() {rate:.0f}/s", flush=True)
    with init_devices():
        ro = epics_signal_r(float, pv(1), name="ao_ro")
    t = time.perf_counter()
    RE(count([ro], num=events))
    print(f"ophyd-async: count of a signal_r {events / (time.perf_counter() - t):.0f} events/s", flush=True)
    if mprefix:
        from ophyd_async.epics.motor import Motor

        ms = [Motor(f"{mprefix}:MTR{i}", name=f"m{i}") for i in range(1, motors + 1)]

        async def connect_motors():
            t = time.perf_counter()
            await asyncio.gather(*(m.connect(timeout=60) for m in ms))
            return time.perf_counter() - t

        def position(m):
            return asyncio.run_coroutine_threadsafe(m.user_readback.get_value(), RE.loop).result()

        dt = asyncio.run_coroutine_threadsafe(connect_motors(), RE.loop).result()
        group_moves("ophyd-async Motor", RE, ms, dt, position)


def skyrun_python_bench():
    """skyrun.epics (skyrun's Python package) on skyrun's Python RunEngine,
    when this Python has it (python/run-tests makes python/.venv with it)."""
    try:
        import skyrun.epics
    except ImportError:
        print("skyrun.epics: not installed in this Python (python/run-tests makes python/.venv with it)",
              flush=True)
        return
    import bluesky.plan_stubs as bps
    from bluesky.plans import count
    from skyrun import RunEngine
    from skyrun.epics import EpicsSignal, EpicsSignalRO

    for n in ns:
        t = time.perf_counter()
        sigs = skyrun.epics.connect([{"kind": "epics_signal", "name": f"s{i}", "read_pv": pv(i), "read_only": True}
                                     for i in range(n)], 60)
        print(f"skyrun.epics: connect {n} PVs {time.perf_counter() - t:.3f} s", flush=True)
        del sigs
    s = EpicsSignal(pv(0), name="ao", put_complete=True)
    RE = RunEngine()

    def sets():
        for k in range(puts):
            yield from bps.mv(s, k % 100 + 0.25)

    t = time.perf_counter()
    RE(sets())
    print(f"skyrun.epics: sequential put-with-completion bps.mv(EpicsSignal) {puts / (time.perf_counter() - t):.0f}/s",
          flush=True)
    ro = EpicsSignalRO(pv(1), name="ao_ro")
    t = time.perf_counter()
    RE(count([ro], num=events))
    print(f"skyrun.epics: count of an EpicsSignalRO {events / (time.perf_counter() - t):.0f} events/s", flush=True)
    if mprefix:
        t = time.perf_counter()
        ms = list(skyrun.epics.connect([{"kind": "epics_motor", "name": f"m{i}", "prefix": f"{mprefix}:MTR{i}"}
                                        for i in range(1, motors + 1)], 60).values())
        group_moves("skyrun.epics EpicsMotor", RE, ms, time.perf_counter() - t, lambda m: m.position)


ophyd_bench()
ophyd_async_bench()
skyrun_python_bench()
