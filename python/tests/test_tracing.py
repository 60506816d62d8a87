"""Tracing across Python and skyrun: the docs example's four spans with
Bluesky's parent links (asserted with the SDK's InMemorySpanExporter), the
console output of the docs script itself, and a Python device's own
"Ophyd Status" span parented under skyrun's set span.

Each case runs in a subprocess: OpenTelemetry's global provider can be set
once per process."""

import json
import pathlib
import subprocess
import sys
import textwrap

HERE = pathlib.Path(__file__).parent

PRELUDE = """
import json
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.tracing import trace_plan, tracer
from skyrun import RunEngine
exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource(attributes={SERVICE_NAME: "skyrun-test"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

def dump():
    provider.force_flush()
    out = []
    for s in exporter.get_finished_spans():
        out.append({
            "name": s.name, "span_id": s.context.span_id, "trace_id": s.context.trace_id,
            "parent": s.parent.span_id if s.parent else None,
            "scope": s.instrumentation_scope.name, "attributes": dict(s.attributes),
            "resource": dict(s.resource.attributes), "status": s.status.status_code.name,
        })
    print("SPANS" + json.dumps(out))
"""


def run(body):
    code = PRELUDE + textwrap.dedent(body) + "\ndump()\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(l for l in p.stdout.splitlines() if l.startswith("SPANS"))
    return json.loads(line[len("SPANS"):])


def by_name(spans):
    out = {}
    for s in spans:
        out.setdefault(s["name"], []).append(s)
    return out


def test_the_docs_example_gives_four_spans_with_bluesky_parents():
    spans = run(
        """
        from skyrun.sim import det1
        RE = RunEngine()
        @trace_plan(tracer, "demo plan")
        def test_tracing_plan():
            yield from bps.abs_set(det1._motor, 5)
        RE(bpp.run_wrapper(test_tracing_plan()))
        """
    )
    s = by_name(spans)
    assert sorted(s) == ["Bluesky RunEngine run", "Bluesky RunEngine set", "Ophyd Status", "demo plan"]
    assert all(len(v) == 1 for v in s.values())
    run_, plan, set_, status = (s[n][0] for n in ("Bluesky RunEngine run", "demo plan", "Bluesky RunEngine set",
                                                  "Ophyd Status"))
    # Bluesky's parenting: the run span and the plan span are roots; set is the
    # plan's child (the Python context crossed into skyrun), the Status set's.
    assert run_["parent"] is None and plan["parent"] is None
    assert set_["parent"] == plan["span_id"] and set_["trace_id"] == plan["trace_id"]
    assert status["parent"] == set_["span_id"] and status["trace_id"] == plan["trace_id"]
    assert run_["trace_id"] != plan["trace_id"]
    # Scopes and attributes as Bluesky and ophyd write them; the Python provider's resource.
    assert (set_["scope"], status["scope"], run_["scope"]) == ("bluesky.tracing", "ophyd.status", "bluesky.tracing")
    assert set_["attributes"]["msg.command"] == "set" and set_["attributes"]["msg.args"] == [5]
    assert set_["attributes"]["msg.kwargs"] == '{"group": null}'
    assert status["attributes"]["status_type"] == "MoveStatus" and status["attributes"]["target"] == 5
    assert status["attributes"]["device_name"] == "motor1"
    assert run_["attributes"]["exit_status"] == "success"
    assert all(x["resource"]["service.name"] == "skyrun-test" for x in spans)


def test_the_docs_script_prints_the_four_spans():
    p = subprocess.run([sys.executable, str(HERE.parent / "examples" / "tracing_docs.py")], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    decoder, text, spans = json.JSONDecoder(), p.stdout, []
    i = text.find("{")
    while i != -1:
        obj, end = decoder.raw_decode(text, i)
        spans.append(obj)
        i = text.find("{", end)
    names = sorted(s["name"] for s in spans)
    assert names == ["Bluesky RunEngine run", "Bluesky RunEngine set", "Ophyd Status", "demo plan"], p.stdout
    ids = {s["name"]: s["context"]["span_id"] for s in spans}
    parent = {s["name"]: s["parent_id"] for s in spans}
    assert parent["Bluesky RunEngine set"] == ids["demo plan"]
    assert parent["Ophyd Status"] == ids["Bluesky RunEngine set"]
    assert parent["demo plan"] is None and parent["Bluesky RunEngine run"] is None
    assert all(s["resource"]["attributes"]["service.name"] == "bluesky-docs-example" for s in spans)


def test_an_ophyd_device_status_span_is_a_child_of_skyruns_set_span():
    spans = run(
        """
        import ophyd.sim as osim
        import skyrun.sim as ssim
        RE = RunEngine()
        @trace_plan(tracer, "mixed plan")
        def plan():
            yield from bps.mv(osim.motor1, 2, ssim.motor2, 3)
        RE(bpp.run_wrapper(plan()))
        """
    )
    s = by_name(spans)
    plan = s["mixed plan"][0]
    sets = {x["attributes"]["msg.obj"].split("name='")[1].split("'")[0]: x for x in s["Bluesky RunEngine set"]}
    assert set(sets) == {"motor1", "motor2"}
    assert all(x["parent"] == plan["span_id"] for x in sets.values())
    statuses = {x["attributes"]["device_name"]: x for x in s["Ophyd Status"]}
    # motor1 is ophyd's own SynAxis (Python, run as an actor): its span comes from ophyd itself.
    assert statuses["motor1"]["parent"] == sets["motor1"]["span_id"]
    assert statuses["motor2"]["parent"] == sets["motor2"]["span_id"]
    wait = s["Bluesky RunEngine wait"][0]
    assert wait["parent"] == plan["span_id"]
