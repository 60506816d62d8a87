"""``Msg("locate", ...)`` of Python objects with a coroutine ``locate()`` on
skyrun's RunEngine: one object (awaited at once) and two (gathered: both
coroutines run as tasks on the loop together).

    python python/benchmarks/bench_locate.py [--messages 2000] [--repeats 5]

Each case: a plan of ``--messages`` locate messages, run once to warm up,
then ``--repeats`` times; prints the median time per message in µs.
"""

import argparse
import statistics
import time

from bluesky.utils import Msg
from ophyd.sim import NullStatus

from skyrun import RunEngine


class Located:
    def __init__(self, name):
        self.name, self.parent = name, None

    def set(self, value):
        return NullStatus()

    async def locate(self):
        return {"setpoint": 1.0, "readback": 1.0}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    RE = RunEngine()
    one, two = Located("one"), Located("two")

    def plan(objs):
        for _ in range(a.messages):
            yield Msg("locate", *objs)

    for label, objs in (("one object", [one]), ("two objects", [one, two])):
        RE(plan(objs))
        per = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            RE(plan(objs))
            per.append((time.perf_counter() - t) / a.messages * 1e6)
        runs = ", ".join(f"{x:.1f}" for x in per)
        print(f"{label}: median {statistics.median(per):.1f} µs per locate message (runs: {runs})")


if __name__ == "__main__":
    main()
