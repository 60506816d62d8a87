"""The EPICS bench, Python's side: ophyd 1.11.2 (pyepics) and ophyd-async
0.21.3 (aioca) on the same IOC as skyrun's (bench/run.sh runs both).

    python compare.py PREFIX N1,N2 PUTS EVENTS
"""
import asyncio
import sys
import time

prefix, ns, puts, events = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
pv = lambda i: f"{prefix}:AO:{i:05}"  # noqa: E731


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


ophyd_bench()
ophyd_async_bench()
