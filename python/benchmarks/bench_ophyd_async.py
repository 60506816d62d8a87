"""ophyd-async's sim devices on Bluesky's RunEngine and on skyrun's, in one
Python session, on the same plans (issue 22, point 6).

    python python/benchmarks/bench_ophyd_async.py [--repeats 5] [--json FILE]
    python python/benchmarks/bench_ophyd_async.py --only skyrun scan100 --repeats 5   # for py-spy
    python python/benchmarks/bench_ophyd_async.py --iterations   # asyncio loop iterations per run
    python python/benchmarks/bench_ophyd_async.py --pool a.json b.json ...   # the runs of several sessions

Cases (each run gets a new engine and new devices connected on its loop;
only ``RE(plan)`` is timed):

- ``scan100``: ``bp.scan([det], m, -1, 1, 100)``, SimMotor(instant=True) and
  a SimPointDetector with ``acquire_time`` 0 (its default 0.1 s would make
  the scan 10 s of sleeping);
- ``fly1000``: the ``blob_fly`` plan of python/tests/test_ophyd_async.py, a
  SimBlobDetector writing 1,000 frames to HDF5, livetime 1 ms + deadtime
  1 ms as in ophyd-async's detector docs: the detector's own clock makes
  it at least 2.0 s on any engine;
- ``fly1000fast``: the same with livetime = deadtime = 5 µs (10 ms of frames),
  so the engine's share shows;
- ``mv1000``: 1,000 ``bps.mv`` of a SimMotor(instant=True).

Runs alternate engines (b, s, s, b, b, s, ...: each repeat swaps which goes
first), medians reported, with each pair's ratio (the two runs back to
back: the least disturbed by a shared machine's load) and the process's CPU
time. The split: "plan's Python" is the same generator
stepped by a bare loop that answers every message at once (no engine, no
devices); "devices' asyncio" is the same device calls (stage, set, trigger,
read, prepare, kickoff, collect_asset_docs, complete, ...) awaited in one
coroutine on a plain asyncio loop, no engine, no plan; the engine's share
is the total minus both.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import numpy as np
from ophyd_async.core import StaticPathProvider, TriggerInfo, UUIDFilenameProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimMotor, SimPointDetector

CASES = ("scan100", "fly1000", "fly1000fast", "mv1000")
TIMING = {"fly1000": (0.001, 0.001), "fly1000fast": (5e-6, 5e-6)}
TIMEOUT = 120


def engine(name):
    if name == "skyrun":
        from skyrun import RunEngine
    else:
        from bluesky import RunEngine
    return RunEngine({}, context_managers=[]) if name == "bluesky" else RunEngine({})


def on_loop(loop, coro):
    """Awaits ``coro`` on the engine's loop (running on its own thread)."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(TIMEOUT)


def devices(case, loop, directory):
    """New devices for ``case``, connected on the current Bluesky event loop."""
    with init_devices(timeout=10):
        gen = PatternGenerator()
        m = SimMotor(instant=True)
        if case.startswith("fly"):
            det = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), directory), gen)
        else:
            det = SimPointDetector(gen, num_channels=2)
    if case == "scan100":

        async def instant():
            await det.acquire_time.set(0.0)

        on_loop(loop, instant())
    return {"m": m, "det": det}


def blob_fly(det, frames, livetime, deadtime):
    """python/tests/test_ophyd_async.py's blob_fly, with the frame timing a parameter."""

    @bpp.stage_decorator([det])
    @bpp.run_decorator()
    def inner():
        yield from bps.prepare(det, TriggerInfo(number_of_events=frames, livetime=livetime, deadtime=deadtime),
                               wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing(flyers=[det], dets=[det], flush_period=0.05)

    return (yield from inner())


def mv_loop(m, n=1000):
    for i in range(n):
        yield from bps.mv(m, float(i % 10))


def plan(case, d):
    if case == "scan100":
        return bp.scan([d["det"]], d["m"], -1, 1, 100)
    if case == "mv1000":
        return mv_loop(d["m"])
    return blob_fly(d["det"], 1000, *TIMING[case])


async def devices_only(case, d):
    """The device calls the plan makes, awaited in a row: no engine, no plan."""
    m, det = d["m"], d["det"]
    if case == "mv1000":
        for i in range(1000):
            await m.set(float(i % 10))
        return
    if case == "scan100":
        for dev in (det, m):
            await dev.stage()
            await dev.describe()
            await dev.describe_configuration()
            await dev.read_configuration()
        for x in np.linspace(-1, 1, 100):
            await m.set(float(x))
            await det.trigger()
            await det.read()
            await m.read()
        await m.stop()
        for dev in (m, det):
            await dev.unstage()
        return
    livetime, deadtime = TIMING[case]
    await det.stage()
    await det.prepare(TriggerInfo(number_of_events=1000, livetime=livetime, deadtime=deadtime))
    await det.describe()
    await det.kickoff()
    complete = det.complete()
    while True:
        [doc async for doc in det.collect_asset_docs()]
        await det.get_index()
        if complete.done:
            break
        await asyncio.wait([complete.task], timeout=0.05)
    await complete
    [doc async for doc in det.collect_asset_docs()]
    await det.unstage()


class _Done:
    """What the bare driver answers for a status: done at once."""

    done = success = True

    def add_callback(self, cb):
        cb(self)


def drive_bare(gen):
    """Steps ``gen`` answering each message at once: the plan's own Python."""
    reply = None
    try:
        while True:
            c = gen.send(reply).command
            if c in ("set", "trigger", "prepare", "kickoff", "complete"):
                reply = _Done()
            elif c == "read":
                reply = {}
            elif c == "open_run":
                reply = "uid"
            elif c == "wait":
                reply = True
            else:
                reply = None
    except StopIteration:
        pass


def timed(name, case, directory):
    """Seconds of ``RE(plan)`` on a new engine ``name`` ('bluesky', 'skyrun',
    'plan' for the bare driver, 'devices' for the device calls alone): wall
    clock, and the process's CPU time (all threads), which a shared
    machine's other work disturbs less."""
    from bluesky.run_engine import get_bluesky_event_loop

    RE = engine("bluesky" if name in ("plan", "devices") else name)
    loop = get_bluesky_event_loop()
    directory = tempfile.mkdtemp(dir=directory)  # this run's HDF5 files, removed after it
    d = devices(case, loop, directory)
    t0, c0 = time.perf_counter(), time.process_time()
    if name == "plan":
        drive_bare(plan(case, d))
    elif name == "devices":
        on_loop(loop, devices_only(case, d))
    else:
        docs = []
        RE(plan(case, d), lambda n, doc: docs.append(n))
        assert case == "mv1000" or docs[-1] == "stop", docs[-3:]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if name != "skyrun":  # Bluesky's loop runs on a thread of its own: end it
        loop.call_soon_threadsafe(loop.stop)
    shutil.rmtree(directory, ignore_errors=True)
    return dt, cpu


def iterations(cases, directory):
    """Counts, for one run of each case on each engine, the asyncio loop's
    iterations (``_run_once``) and, on skyrun, the calls from its engine
    thread into the driven loop (``DrivenLoop.iterate``, one Rust-to-Python
    crossing each)."""
    from skyrun import _loop

    n = {"iterations": 0, "iterate_calls": 0}
    run_once, iterate = asyncio.BaseEventLoop._run_once, _loop.DrivenLoop.iterate

    def counted_run_once(self):
        n["iterations"] += 1
        return run_once(self)

    def counted_iterate(self):
        n["iterate_calls"] += 1
        return iterate(self)

    asyncio.BaseEventLoop._run_once, _loop.DrivenLoop.iterate = counted_run_once, counted_iterate
    try:
        for case in cases:
            for name in ("bluesky", "skyrun"):
                n.update(iterations=0, iterate_calls=0)
                dt, _ = timed(name, case, directory)
                print(f"{case:12s} {name:8s} {dt * 1e3:8.1f} ms  loop iterations {n['iterations']:6d}  "
                      f"driven-loop calls {n['iterate_calls']:6d}", flush=True)
    finally:
        asyncio.BaseEventLoop._run_once, _loop.DrivenLoop.iterate = run_once, iterate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--only", nargs=2, metavar=("ENGINE", "CASE"), help="run one engine's case --repeats times")
    ap.add_argument("--iterations", action="store_true", help="count the asyncio loop's iterations per run")
    ap.add_argument("--json")
    ap.add_argument("--pool", nargs="+", metavar="JSON", help="pool the runs of several --json files "
                    "(e.g. alternating processes) and print medians, quartiles and pair ratios")
    args = ap.parse_args()
    if args.pool:
        pool(args.pool)
        return
    directory = tempfile.mkdtemp(prefix="bench-ophyd-async-")
    try:
        run(args, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pool(files):
    """Medians and quartiles of the runs of ``files`` together, by case."""
    runs = {}
    for f in files:
        with open(f) as fh:
            for case, r in json.load(fh).items():
                if case == "machine":
                    continue
                into = runs.setdefault(case, {"pairs": []})
                into["pairs"] += r["pair_ratios"]
                for k in ("bluesky", "skyrun", "plan", "devices"):
                    into.setdefault(k, []).extend(r["runs_s"][k])
                    into.setdefault("cpu_" + k, []).extend(r["cpu_s"][k])

    def q(x):
        q1, _, q3 = statistics.quantiles(x, n=4)
        return f"{statistics.median(x) * 1e3:7.1f} ms ({q1 * 1e3:.0f}-{q3 * 1e3:.0f})"

    for case, r in runs.items():
        b, s, p, dv = (statistics.median(r[k]) for k in ("bluesky", "skyrun", "plan", "devices"))
        pairs = sorted(r["pairs"])
        print(f"{case:12s} n={len(r['bluesky'])}  bluesky {q(r['bluesky'])}  skyrun {q(r['skyrun'])}  ratio {b / s:.2f}  "
              f"pairs {pairs[0]:.2f}-{pairs[-1]:.2f} (median {statistics.median(pairs):.2f}, skyrun not slower in "
              f"{sum(x >= 1 for x in pairs)} of {len(pairs)})  engine: bluesky {(b - p - dv) * 1e3:.1f} ms, skyrun "
              f"{(s - p - dv) * 1e3:.1f} ms  cpu: bluesky {statistics.median(r['cpu_bluesky']) * 1e3:.1f} ms, skyrun "
              f"{statistics.median(r['cpu_skyrun']) * 1e3:.1f} ms")


def run(args, directory):
    if args.iterations:
        iterations(args.cases, directory)
        return
    if args.only:
        for _ in range(args.repeats):
            print(f"{args.only[0]} {args.only[1]} {timed(*args.only, directory)[0]:.4f} s", flush=True)
        return
    results = {}
    for case in args.cases:
        runs = {k: [] for k in ("bluesky", "skyrun", "plan", "devices")}
        cpu = {k: [] for k in runs}
        for rep in range(args.repeats):
            order = ("bluesky", "skyrun") if rep % 2 == 0 else ("skyrun", "bluesky")
            for name in (*order, "plan", "devices"):
                dt, c = timed(name, case, directory)
                runs[name].append(dt)
                cpu[name].append(c)
        med = {k: statistics.median(v) for k, v in runs.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        # Each repeat's pair ran back to back: its ratio is the least disturbed by the machine's load.
        pairs = sorted(b / s for b, s in zip(runs["bluesky"], runs["skyrun"]))
        results[case] = {"median_s": med, "runs_s": runs, "median_cpu_s": med_cpu, "cpu_s": cpu,
                         "pair_ratios": pairs}
        b, s, p, dv = med["bluesky"], med["skyrun"], med["plan"], med["devices"]
        print(f"{case:12s} bluesky {b * 1e3:9.1f} ms  skyrun {s * 1e3:9.1f} ms  ratio {b / s:5.2f}x  "
              f"plan {p * 1e3:7.1f} ms  devices {dv * 1e3:7.1f} ms  "
              f"engine: bluesky {(b - p - dv) * 1e3:7.1f} ms, skyrun {(s - p - dv) * 1e3:7.1f} ms  "
              f"cpu: bluesky {med_cpu['bluesky'] * 1e3:7.1f} ms, skyrun {med_cpu['skyrun'] * 1e3:7.1f} ms  "
              f"pair ratios {pairs[0]:.2f}-{pairs[-1]:.2f} (median {statistics.median(pairs):.2f})", flush=True)
    results["machine"] = {"load_average": os.getloadavg(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
