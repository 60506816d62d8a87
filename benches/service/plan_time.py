"""The plan's own time on blueapi's side (issue 24): Bluesky 1.15.1's RunEngine in-process.

Usage: python plan_time.py [N] [--skyrun]   (run with this folder on PYTHONPATH, in blueapi's venv;
--skyrun: skyrun's Python RunEngine instead, in a venv with skyrun, the side of `python -m skyrun service`)

Builds blueapi_env.py's devices and times `RE(count([det], num=10, delay=0))`
N times (default 30, after 3 not counted) with one subscriber (keeping the start and stop times); prints the
median and the median of stop.time - start.time in ms as one JSON line.
"""

import json
import statistics
import sys
import time

import bluesky.plans as bp

if "--skyrun" in sys.argv:
    from skyrun import RunEngine
else:
    from bluesky import RunEngine

n = int(next((a for a in sys.argv[1:] if not a.startswith("--")), 30))
RE = RunEngine({})

import blueapi_env  # noqa: E402 (its devices connect on the RunEngine's loop, made first)

det = blueapi_env.devices.build_and_connect().devices["det"]
walls, runs = [], []
docs = {}
RE.subscribe(lambda name, doc: docs.__setitem__(name, doc.get("time")))
for i in range(n + 3):
    docs.clear()
    t0 = time.perf_counter()
    RE(bp.count([det], num=10, delay=0))
    t1 = time.perf_counter()
    if i >= 3:
        walls.append((t1 - t0) * 1000)
        runs.append((docs["stop"] - docs["start"]) * 1000)
print(json.dumps({"RE_call_ms_median": round(statistics.median(walls), 2),
                  "run_ms_median": round(statistics.median(runs), 2), "n": n}))
