"""``python -m skyrun run PLAN.py [--devices beamline.py]``: runs a plan written
in Python, with the options of ``skyrun run``. (``python -m skyrun service``:
see ``skyrun.service``.)

``--devices`` (repeatable) names a device module, as blueapi's are: a ``.py``
file or an importable module name whose top-level ophyd, ophyd-async or
``skyrun.sim`` devices (and those its device manager builds) are the
devices, known by their names; or a skyrun ``.toml`` device file. The module
runs after the RunEngine exists, so ``init_devices()`` in it connects on the
engine's loop; ophyd-async devices it left unnamed or unconnected are named
after their variables and connected (``skyrun._devices_module``)::

    # beamline.py
    from ophyd_async.core import init_devices
    from ophyd_async.sim import PatternGenerator, SimMotor, SimPointDetector

    with init_devices():
        gen = PatternGenerator()
        m = SimMotor(instant=True)
        det = SimPointDetector(gen)

The plan file is ordinary Python, executed with the devices (and
``devices``, a dict of them) already defined as globals. It must
define ``plan``: a generator function (called with no arguments) or a plan
(generator or list of messages); ``--plan NAME`` picks another name. A
``md`` dict in the file is added to the start documents. For example::

    import bluesky.plans as bp
    md = {"sample": "Au"}
    def plan():
        yield from bp.scan([det], motor, -1, 1, 11)

``--tiled URI`` writes every run into a Tiled server with Bluesky's
``TiledWriter`` (the API key from ``TILED_API_KEY``), as a Bluesky session's
``RE.subscribe(TiledWriter(client))`` does.

Exit status: 0 when the plan succeeded (or was stopped), 1 when it failed
or was aborted or a device did not connect, 2 for bad input (a missing
file, no ``plan``, a device module or file that does not load, a Tiled
server that does not answer).
"""

import argparse
import json
import pathlib
import re
import runpy
import sys
import time

USAGE_ERROR = 2


def _parser():
    p = argparse.ArgumentParser(prog="python -m skyrun", description="Run Bluesky plans on skyrun.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a plan written in Python")
    r.add_argument("plan_file", metavar="PLAN.py")
    r.add_argument("--devices", action="append", default=[], metavar="MODULE",
                   help="a device module (a .py file or a module name, as blueapi's: its ophyd, ophyd-async or "
                   "skyrun devices) or a skyrun .toml device file (repeatable)")
    r.add_argument("--plan", default="plan", help="the name the plan has in the file (default: plan)")
    r.add_argument("--documents", metavar="FILE.jsonl", help='write every document as a line ["name", {...}]')
    r.add_argument("--tiled", metavar="URI", help="write every run into the Tiled server at URI with Bluesky's "
                   "TiledWriter (its API key from TILED_API_KEY)")
    r.add_argument("--trace", metavar="TARGET", help="none | console | jsonl:FILE | otlp (default: otlp when "
                   "OTEL_EXPORTER_OTLP_ENDPOINT is set, else none)")
    r.add_argument("--run-trace", action="store_true", help="make each run one trace")
    r.add_argument("--trace-all", action="store_true", help="a span for every message")
    r.add_argument("--profile", action="store_true", help="print, per span name, count and durations")
    r.add_argument("--quiet", action="store_true", help="no live table")
    from .service import add_parser as add_service

    add_service(sub)
    return p


class _Usage(Exception):
    pass


def _load_plan(args, devices):
    path = pathlib.Path(args.plan_file)
    if not path.is_file():
        raise _Usage(f"{path}: no such plan file")
    init = dict(devices)
    init["devices"] = devices
    try:
        ns = runpy.run_path(str(path), init_globals=init, run_name="__skyrun_plan__")
    except SyntaxError as e:
        raise _Usage(f"{path}:{e.lineno}:{e.offset or 0}: {e.msg}") from None
    if args.plan not in ns:
        raise _Usage(f"{path}: defines no '{args.plan}' (define a generator function `def {args.plan}(): ...`, "
                     "or pick another name with --plan)")
    plan = ns[args.plan]
    if callable(plan):
        plan = plan()
    md = ns.get("md", {})
    if not isinstance(md, dict):
        raise _Usage(f"{path}: md must be a dict, got {type(md).__name__}")
    return plan, md


def _tiled_writer(uri):
    """Bluesky's TiledWriter on the Tiled server at ``uri`` (tiled's client
    takes the API key from ``TILED_API_KEY``, or ``?api_key=`` in ``uri``)."""
    try:
        from bluesky.callbacks.tiled_writer import TiledWriter
        from tiled.client import from_uri
    except ImportError as e:
        raise _Usage(f"--tiled needs Tiled's client ({e}): pip install 'tiled[client]'") from None
    try:
        return TiledWriter(from_uri(uri))
    except Exception as e:  # unreachable server, refused key, not a Tiled server: said before anything runs
        raise _Usage(f"--tiled {uri}: {type(e).__name__}: {e}") from None


def _ask(RE, out):
    """After a Ctrl-C pause: resume, abort or stop (a second Ctrl-C aborts)."""
    while True:
        try:
            answer = input("paused: [r]esume, [a]bort or [s]top? ").strip().lower()
        except (KeyboardInterrupt, EOFError):
            print("\naborting", file=out)
            return lambda: RE.abort("interrupted (Ctrl-C)")
        if answer in ("r", "resume"):
            return RE.resume
        if answer in ("a", "abort"):
            return lambda: RE.abort("aborted at the prompt")
        if answer in ("s", "stop"):
            return RE.stop


def run(args):
    from . import _skyrun
    from ._devices_module import DeviceError, load_device_modules
    from .errors import RunEngineInterrupted
    from .run_engine import RunEngine, use_skyrun_pipeline
    from .service import LoadError

    out = sys.stderr if args.trace == "console" else sys.stdout
    try:
        use_skyrun_pipeline(args.trace, args.profile)
    except ValueError as e:
        print(f"skyrun: --trace: {e}", file=sys.stderr)
        return USAGE_ERROR
    # The engine first: its loop is Bluesky's event loop, which the device modules' ophyd-async devices connect on.
    RE = RunEngine({}, run_trace=args.run_trace, trace_all_messages=args.trace_all)
    try:
        devices = load_device_modules(args.devices, RE)
    except (ValueError, OSError, LoadError) as e:
        print(f"skyrun: {e}", file=sys.stderr)
        return USAGE_ERROR
    except DeviceError as e:
        print(f"skyrun: {e}", file=sys.stderr)
        return 1
    try:
        plan, md = _load_plan(args, devices)
        if args.tiled:
            RE.subscribe(_tiled_writer(args.tiled))
    except _Usage as e:
        print(f"skyrun: {e}", file=sys.stderr)
        return USAGE_ERROR
    RE.md.update(md)
    docs = {"events": 0, "stops": []}

    def count(name, doc):
        if name == "event":
            docs["events"] += 1
        elif name == "stop":
            docs["stops"].append(doc)

    RE.subscribe(count)
    if args.documents:
        sink = open(args.documents, "w")
        RE.subscribe(lambda name, doc: sink.write(json.dumps([name, doc]) + "\n"))
    if not args.quiet and out.isatty():
        try:
            from bluesky.callbacks.best_effort import BestEffortCallback

            bec = BestEffortCallback()
            bec.disable_plots()
            RE.subscribe(bec)
        except ImportError:
            pass

    t0 = time.perf_counter()
    code = 0
    try:
        action = lambda: RE(plan)  # noqa: E731
        while True:
            try:
                action()
                break
            except RunEngineInterrupted:
                action = _ask(RE, out)
    except Exception as e:  # the plan failed: its runs are closed with exit status 'fail'
        print(f"skyrun: plan failed: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    elapsed = time.perf_counter() - t0
    for stop in docs["stops"]:
        if stop["exit_status"] != "success":
            code = 1
    statuses = ", ".join(s["exit_status"] for s in docs["stops"]) or "no run"
    print(f"{len(docs['stops'])} run(s), {docs['events']} events in {elapsed:.3f} s: {statuses}", file=out)
    if args.documents:
        sink.close()
    report = _skyrun.shutdown_telemetry()
    profile = _skyrun.profile_report()
    if args.profile and profile is not None:
        n, table = profile
        print(f"\nprofile: {n} spans over {elapsed:.3f} s of running (span times nest: a parent's total "
              "includes its children's)", file=out)
        print(table or "(no spans were recorded)", file=out)
    dropped = re.search(r"(\d+) dropped", report or "")
    if dropped and int(dropped.group(1)) > 0:
        print(f"skyrun: trace export: {report}", file=sys.stderr)
    return code


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.cmd == "run":
        return run(args)
    if args.cmd == "service":
        from .service import main as service

        return service(args)
    return USAGE_ERROR
