"""skyrun's RunEngine next to Bluesky's, in one session, on the same plans.

    python python/benchmarks/bench_vs_bluesky.py [--quick] [--json FILE]

Each figure is the median of 3 runs; the runs of skyrun, Bluesky and the bare
driver alternate (s, b, p, s, b, p, ...) so that load from elsewhere on the
machine hits them alike. For each case the plan's own Python
cost is measured too, by driving the same generator with a minimal Python
loop that answers every message at once (no engine): "plan Python" is that
time, "engine" is the rest (skyrun's: stepping the generator from Rust,
converting messages, the engine and devices; Bluesky's: its asyncio loop,
message handlers and ophyd.sim devices).
"""

import argparse
import json
import statistics
import sys
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import ophyd.sim as osim
from bluesky import RunEngine as BlueskyRE
from bluesky.utils import Msg

import skyrun.sim as ssim
from skyrun import RunEngine as SkyrunRE


class _Done:
    """What the bare driver answers for a status: done at once."""

    done = success = True

    def add_callback(self, cb):
        cb(self)


_DONE = _Done()


def drive_bare(plan):
    """Steps ``plan`` answering each message at once: the plan's own Python cost."""
    reply = None
    try:
        while True:
            msg = plan.send(reply)
            c = msg.command
            if c in ("set", "trigger"):
                reply = _DONE
            elif c == "read":
                reply = {}
            elif c == "open_run":
                reply = "uid"
            else:
                reply = None
    except StopIteration:
        pass


def nulls(n):
    for _ in range(n):
        yield Msg("null")


def set_waits(motor, n):
    for i in range(n):
        yield from bps.abs_set(motor, i % 2, wait=True)


def median_time(f, reps=3):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run, figures not meaningful)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    k = 0.02 if args.quick else 1.0
    N_NULL_S, N_NULL_B = int(500_000 * k), int(20_000 * k)
    N_SET_S, N_SET_B = int(50_000 * k), int(3_000 * k)
    N_COUNT_S, N_COUNT_B = int(20_000 * k), int(2_000 * k)
    N_SCAN_S, N_SCAN_B = int(10_000 * k), int(1_000 * k)
    N_NATIVE = int(200_000 * k)

    sky, blue = SkyrunRE(), BlueskyRE(context_managers=[])
    rows = []

    def case(name, unit, n_s, n_b, make_s, make_b, bare=None):
        ts, tb, tp = [], [], []
        for _ in range(3):
            ts.append(median_time(lambda: sky(make_s(n_s)), reps=1))
            tb.append(median_time(lambda: blue(make_b(n_b)), reps=1))
            if bare:
                tp.append(median_time(lambda: drive_bare(bare(n_s)), reps=1))
        t_s, t_b = statistics.median(ts), statistics.median(tb)
        t_p = statistics.median(tp) if bare else None
        rate_s, rate_b = n_s / t_s, n_b / t_b
        row = {"case": name, "unit": unit, "skyrun_per_s": rate_s, "bluesky_per_s": rate_b, "ratio": rate_s / rate_b,
               "skyrun_us": 1e6 * t_s / n_s, "bluesky_us": 1e6 * t_b / n_b}
        if t_p is not None:
            row["plan_python_us"] = 1e6 * t_p / n_s
            row["skyrun_engine_us"] = row["skyrun_us"] - row["plan_python_us"]
            row["bluesky_engine_us"] = row["bluesky_us"] - row["plan_python_us"]
        rows.append(row)
        print(f"{name:34s} skyrun {rate_s:>11,.0f} {unit}/s  bluesky {rate_b:>9,.0f} {unit}/s  x{rate_s / rate_b:6.1f}"
              + (f"   per {unit}: plan Python {row['plan_python_us']:.2f} us, skyrun engine "
                 f"{row['skyrun_engine_us']:.2f} us, bluesky engine {row['bluesky_engine_us']:.2f} us"
                 if t_p is not None else ""), flush=True)

    case("null messages", "msg", N_NULL_S, N_NULL_B, nulls, nulls, bare=nulls)
    ssim.motor.set(0).wait(5)
    case("abs_set(motor, x, wait=True)", "set+wait", N_SET_S, N_SET_B, lambda n: set_waits(ssim.motor, n),
         lambda n: set_waits(osim.motor, n), bare=lambda n: set_waits(ssim.motor, n))
    case("bp.count([det], num=N)", "event", N_COUNT_S, N_COUNT_B, lambda n: bp.count([ssim.det], num=n),
         lambda n: bp.count([osim.det], num=n), bare=lambda n: bp.count([ssim.det], num=n))
    case("bp.scan([det], motor, -1, 1, N)", "event", N_SCAN_S, N_SCAN_B,
         lambda n: bp.scan([ssim.det], ssim.motor, -1, 1, n), lambda n: bp.scan([osim.det], osim.motor, -1, 1, n),
         bare=lambda n: bp.scan([ssim.det], ssim.motor, -1, 1, n))

    # skyrun's native (Rust) count called from Python, with a Python subscriber, vs Bluesky's count with the same one.
    got = []
    sub = lambda name, doc: got.append(name)  # noqa: E731
    sky_n, blue_n = SkyrunRE(), BlueskyRE(context_managers=[])
    sky_n.subscribe(sub)
    blue_n.subscribe(sub)
    ts, tb = [], []
    for _ in range(3):
        ts.append(median_time(lambda: sky_n.run_native_count([ssim.det], num=N_NATIVE), reps=1))
        tb.append(median_time(lambda: blue_n(bp.count([osim.det], num=N_COUNT_B)), reps=1))
    t_s, t_b = statistics.median(ts), statistics.median(tb)
    rate_s, rate_b = N_NATIVE / t_s, N_COUNT_B / t_b
    rows.append({"case": "native count + Python subscriber", "unit": "event", "skyrun_per_s": rate_s,
                 "bluesky_per_s": rate_b, "ratio": rate_s / rate_b, "skyrun_us": 1e6 * t_s / N_NATIVE,
                 "bluesky_us": 1e6 * t_b / N_COUNT_B})
    print(f"{'native count + Python subscriber':34s} skyrun {rate_s:>11,.0f} event/s  bluesky {rate_b:>9,.0f} "
          f"event/s  x{rate_s / rate_b:6.1f}", flush=True)
    assert got.count("event") == 3 * (N_NATIVE + N_COUNT_B), "the subscriber saw every event"

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
