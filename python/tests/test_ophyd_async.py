"""ophyd-async devices (ophyd_async.sim) on skyrun's RunEngine, unchanged:
connected with init_devices() on the RunEngine's loop, their coroutines and
awaitable statuses awaited there, the documents compared with Bluesky's
RunEngine on the same plan and devices, and their statuses traced.

ophyd-async devices are bound to the loop they connected on, and each
RunEngine makes its loop Bluesky's event loop: so each engine gets devices
of its own, made after it (``make``)."""

import asyncio
import json
import pathlib
import subprocess
import sys
import textwrap

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.core import AsyncStatus, StandardReadable, init_devices, soft_signal_rw
from ophyd_async.sim import PatternGenerator, SimMotor, SimPointDetector, SimStage

from conftest import collect, validate
from test_tracing import by_name, run


def bluesky_engine():
    from bluesky import RunEngine

    return RunEngine(context_managers=[])


def skyrun_engine():
    from skyrun import RunEngine

    return RunEngine(call_returns_result=True)


def make():
    """A stage, a point detector following it and a lone motor, connected."""
    with init_devices():
        gen = PatternGenerator()
        stage = SimStage(gen)
        det = SimPointDetector(gen, num_channels=2)
        m = SimMotor(instant=True)
    return {"stage": stage, "det": det, "m": m}


def on_both(plan_of):
    """Runs ``plan_of(devices)`` on Bluesky's RE and on skyrun's, each with
    devices of its own; returns both document lists, validated."""
    out = []
    for engine in (bluesky_engine, skyrun_engine):
        RE = engine()
        devices = make()
        _, docs = collect(RE, plan_of(devices))
        validate(docs)
        out.append(docs)
    return out


def essence(docs):
    """Names, and the content both engines must agree on."""
    out = []
    for name, doc in docs:
        if name == "start":
            e = {k: doc.get(k) for k in ("plan_name", "detectors", "motors", "num_points", "hints")}
        elif name == "descriptor":
            e = {
                "name": doc["name"],
                "data_keys": {k: {f: v.get(f) for f in ("dtype", "shape", "source", "units", "precision")}
                              for k, v in doc["data_keys"].items()},
                "object_keys": doc["object_keys"],
                "hints": doc.get("hints"),
                "configuration": {k: sorted(v["data"]) for k, v in doc["configuration"].items()},
            }
        elif name == "event":
            e = {"seq_num": doc["seq_num"], "keys": sorted(doc["data"]), "timestamps": sorted(doc["timestamps"])}
        elif name == "stop":
            e = {k: doc[k] for k in ("exit_status", "num_events")}
        else:
            e = {}
        out.append((name, e))
    return out


async def put(signal, value):
    await signal.set(value)


def motor_values(docs, keys):
    return [[d["data"][k] for k in keys] for n, d in docs if n == "event"]


def test_init_devices_connects_on_the_runengines_loop_sync_and_async():
    RE = skyrun_engine()
    with init_devices():
        m = SimMotor(instant=True)
    assert m.name == "m"

    async def make_async():
        async with init_devices():
            m2 = SimMotor(instant=True)
        return m2

    m2 = call_in_bluesky_event_loop(make_async(), timeout=10)
    assert m2.name == "m2"
    # Both connected on RE.loop: reading them there works.
    assert call_in_bluesky_event_loop(m.user_readback.get_value(), timeout=10) == 0.0
    RE(bps.mv(m, 1.5, m2, -2.0))
    assert call_in_bluesky_event_loop(m.user_readback.get_value(), timeout=10) == 1.5
    assert call_in_bluesky_event_loop(m2.user_readback.get_value(), timeout=10) == -2.0


def test_mv_and_locate_of_a_sim_motor():
    RE = skyrun_engine()
    with init_devices():
        m = SimMotor(instant=True)

    def plan():
        yield from bps.mv(m, 3.25)
        where = yield from bps.locate(m)
        return where

    result = RE(plan())
    assert result.plan_result == {"setpoint": 3.25, "readback": 3.25}
    assert RE(bps.rd(m)).plan_result == 3.25


def test_a_moving_stage_with_velocity_reaches_its_target():
    RE = skyrun_engine()
    with init_devices():
        stage = SimStage(PatternGenerator())
    call_in_bluesky_event_loop(put(stage.x.velocity, 20.0), timeout=10)
    RE(bps.mv(stage.x, 0.5))
    assert call_in_bluesky_event_loop(stage.x.user_readback.get_value(), timeout=10) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "plan_of",
    [
        pytest.param(lambda d: bp.count([d["det"]], num=3), id="count"),
        pytest.param(lambda d: bp.scan([d["det"]], d["m"], -1, 1, 5), id="scan"),
        pytest.param(lambda d: bp.grid_scan([d["det"]], d["m"], -1, 1, 3, d["stage"].x, 0, 0.2, 2), id="grid_scan"),
    ],
)
def test_the_documents_match_bluesky_on_sim_devices(plan_of):
    bluesky_docs, skyrun_docs = on_both(plan_of)
    assert [n for n, _ in skyrun_docs] == [n for n, _ in bluesky_docs]
    assert essence(skyrun_docs) == essence(bluesky_docs)
    motors = [k for k in ("m", "stage-x") if any(n == "event" and k in d["data"] for n, d in bluesky_docs)]
    for got, want in zip(motor_values(skyrun_docs, motors), motor_values(bluesky_docs, motors)):
        assert got == pytest.approx(want)


class Broken(StandardReadable):
    """An ophyd-async device whose moves fail."""

    def __init__(self, name=""):
        with self.add_children_as_readables():
            self.value = soft_signal_rw(float)
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def set(self, value):
        await asyncio.sleep(0.01)
        raise OSError("limit switch hit")


def test_a_failing_async_move_fails_the_run_and_the_engine_goes_on():
    RE = skyrun_engine()
    with init_devices():
        broken = Broken()
        m = SimMotor(instant=True)
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    with pytest.raises(Exception, match="limit switch hit"):
        RE(bp.scan([m], broken, 0, 1, 2))
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "fail"
    RE(bps.mv(m, 2.0))
    assert RE(bps.rd(m)).plan_result == 2.0


def test_async_statuses_are_traced_as_ophyd_status_spans():
    spans = run(
        """
        import sys
        sys.path.insert(0, %r)
        from ophyd_async.core import AsyncStatus, StandardReadable, init_devices, soft_signal_rw
        from ophyd_async.sim import SimStage, PatternGenerator
        from bluesky.run_engine import call_in_bluesky_event_loop
        from test_ophyd_async import Broken
        RE = RunEngine()

        with init_devices():
            stage = SimStage(PatternGenerator())
            broken = Broken()
        async def put(signal, value):
            await signal.set(value)

        call_in_bluesky_event_loop(put(stage.x.velocity, 10.0), timeout=10)

        @trace_plan(tracer, "demo plan")
        def test_tracing_plan():
            yield from bps.abs_set(stage.x, 0.5, wait=True)

        RE(bpp.run_wrapper(test_tracing_plan()))
        try:
            RE(bps.mv(broken, 1))
        except Exception as e:
            print("FAILED", e)
        """
        % str(pathlib.Path(__file__).parent)
    )
    s = by_name(spans)
    set_spans = s["Bluesky RunEngine set"]
    statuses = {x["attributes"]["device_name"]: x for x in s["Ophyd Status"]}
    assert set(statuses) == {"stage-x", "broken"}
    move = statuses["stage-x"]
    plan_set = next(x for x in set_spans if x["attributes"]["msg.args"] == [0.5])
    assert move["parent"] == plan_set["span_id"] and move["trace_id"] == plan_set["trace_id"]
    a = move["attributes"]
    assert a["status_type"] == "WatchableAsyncStatus" and a["device_type"] == "SimMotor"
    assert a["target"] == 0.5 and a["start_pos"] == 0.0 and a["finish_pos"] == pytest.approx(0.5)
    assert a["unit"] == "mm" and a["no_timeout_given"] is True
    assert move["status"] == "UNSET"
    failed = statuses["broken"]
    assert failed["status"] == "ERROR" and "limit switch hit" in failed["attributes"]["exception"]
    assert failed["attributes"]["status_type"] == "AsyncStatus"


def test_watch_updates_are_span_events():
    code = textwrap.dedent(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import bluesky.plan_stubs as bps
        from bluesky.run_engine import call_in_bluesky_event_loop
        from ophyd_async.core import AsyncStatus, StandardReadable, init_devices, soft_signal_rw
        from ophyd_async.sim import SimMotor
        from skyrun import RunEngine
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        RE = RunEngine()
        with init_devices():
            m = SimMotor(instant=False)
        async def put(signal, value):
            await signal.set(value)
        call_in_bluesky_event_loop(put(m.velocity, 10.0), timeout=10)
        RE(bps.mv(m, 1.0))
        provider.force_flush()
        (status,) = [s for s in exporter.get_finished_spans() if s.name == "Ophyd Status"]
        print("EVENTS" + json.dumps([[e.name, dict(e.attributes)] for e in status.events]))
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    events = json.loads(next(l for l in p.stdout.splitlines() if l.startswith("EVENTS"))[len("EVENTS"):])
    assert len(events) >= 3, events
    assert all(name == "watch" for name, _ in events)
    assert events[0][1]["target"] == 1.0 and events[0][1]["name"] == "m"
    assert all(e["unit"] == "mm" and e["initial"] == 0.0 for _, e in events)
    # The motor moving: current rises from where it started towards the target, in time.
    current = [e["current"] for _, e in events]
    elapsed = [e["time_elapsed"] for _, e in events]
    assert current == sorted(current) and current[0] == 0.0 and 0.5 < current[-1] <= 1.0
    assert elapsed == sorted(elapsed)


def test_a_plans_status_watch_reaches_the_watchable_async_status():
    RE = skyrun_engine()
    with init_devices():
        m = SimMotor(instant=False)
    call_in_bluesky_event_loop(put(m.velocity, 10.0), timeout=10)
    updates = []

    def plan():
        st = yield from bps.abs_set(m, 0.6)
        st.watch(lambda **u: updates.append(u))
        yield from bps.wait()

    RE(plan())
    assert len(updates) >= 2 and {"current", "initial", "target", "name", "unit"} <= set(updates[0])
    assert updates[0]["target"] == 0.6 and updates[0]["name"] == "m"
    assert [u["current"] for u in updates] == sorted(u["current"] for u in updates)


def test_the_example_prints_the_docs_four_spans_and_the_scan():
    example = pathlib.Path(__file__).parent.parent / "examples" / "ophyd_async_scan.py"
    p = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    decoder, text, spans = json.JSONDecoder(), p.stdout, []
    i = text.find("{\n")
    while i != -1:
        obj, end = decoder.raw_decode(text, i)
        spans.append(obj)
        i = text.find("{\n", end)
    first = [s for s in spans if s["context"]["trace_id"] in
             {x["context"]["trace_id"] for x in spans if x["name"] == "demo plan"}]
    assert sorted(s["name"] for s in first) == ["Bluesky RunEngine set", "Ophyd Status", "demo plan"]
    ids = {s["name"]: s["context"]["span_id"] for s in first}
    status = next(s for s in first if s["name"] == "Ophyd Status")
    assert status["parent_id"] == ids["Bluesky RunEngine set"]
    assert status["attributes"]["device_name"] == "motor" and status["attributes"]["target"] == 5
    assert sum(s["name"] == "Bluesky RunEngine run" for s in spans) == 2
    # The stage's moves report progress: watch events on their status spans.
    assert any(e["name"] == "watch" for s in spans if s["name"] == "Ophyd Status" for e in s["events"])
    assert [line.split()[0] for line in p.stdout.splitlines() if line.split()[:1] in (["event"], ["start"], ["stop"])] == [
        "start", "event", "event", "event", "stop"]


# --- Detectors writing HDF5 (SimBlobDetector): stream resources and data ---


def blob_devices(directory):
    """A SimBlobDetector writing into ``directory``, and a motor."""
    from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
    from ophyd_async.sim import SimBlobDetector

    with init_devices():
        gen = PatternGenerator()
        det = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), directory), gen)
        m = SimMotor(instant=True)
    return det, m


def blob_fly(det, _m, frames=5, livetime=0.001):
    """The fly scan of ophyd-async's detector docs: prepare with a
    TriggerInfo, declare the collected stream, kickoff, collect while
    completing."""
    import bluesky.preprocessors as bpp
    from ophyd_async.core import TriggerInfo

    @bpp.stage_decorator([det])
    @bpp.run_decorator()
    def inner():
        yield from bps.prepare(det, TriggerInfo(number_of_events=frames, livetime=livetime, deadtime=0.001),
                               wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing(flyers=[det], dets=[det], flush_period=0.05)

    return (yield from inner())


def blob_scan(det, m):
    return (yield from bp.scan([det], m, -1, 1, 3))


def stream_essence(docs):
    """Names, the external data keys, the stream data's frames and sequence
    numbers, the events' keys, and that every reference points at a
    document of this run."""
    start = docs[0][1]
    uids = {"descriptor": set(), "stream_resource": set()}
    out = []
    for name, doc in docs:
        if name == "descriptor":
            uids["descriptor"].add(doc["uid"])
            out.append((name, {k: (v.get("external"), v["shape"]) for k, v in doc["data_keys"].items()}))
        elif name == "stream_resource":
            assert doc["run_start"] == start["uid"]
            uids["stream_resource"].add(doc["uid"])
            out.append((name, doc["data_key"], doc["mimetype"]))
        elif name == "stream_datum":
            assert doc["descriptor"] in uids["descriptor"]
            assert doc["stream_resource"] in uids["stream_resource"]
            out.append((name, doc["indices"], doc["seq_nums"]))
        elif name == "event":
            out.append((name, doc["seq_num"], sorted(doc["data"]), doc["filled"]))
        elif name == "stop":
            out.append((name, doc["exit_status"], doc["num_events"]))
        else:
            out.append((name,))
    return out


@pytest.mark.parametrize("plan_of", [blob_fly, blob_scan], ids=["fly", "scan"])
def test_a_detector_writing_hdf5_gives_bluesky_s_stream_documents(tmp_path, plan_of):
    import h5py

    out = []
    for engine in (bluesky_engine, skyrun_engine):
        RE = engine()
        directory = tmp_path / engine.__name__
        directory.mkdir()
        det, m = blob_devices(directory)
        _, docs = collect(RE, plan_of(det, m))
        validate(docs)
        out.append(stream_essence(docs))
        files = list(directory.glob("*.h5"))
        assert len(files) == 1, files
        resource = next(doc for name, doc in docs if name == "stream_resource" and doc["data_key"] == det.name)
        with h5py.File(files[0], "r") as f:
            frames = f[resource["parameters"]["dataset"]].shape[0]
        last = [doc for name, doc in docs if name == "stream_datum"][-1]
        assert frames == last["indices"]["stop"]
    assert out[1] == out[0]
    names = [e[0] for e in out[1]]
    assert "stream_resource" in names and "stream_datum" in names
