"""ophyd-async's simulated devices on skyrun's RunEngine, traced.

The example of Bluesky's tracing documentation with an ophyd-async SimMotor
in place of ``det1._motor``: it prints the same four spans (``demo plan``,
``Bluesky RunEngine set``, ``Ophyd Status``, ``Bluesky RunEngine run``)
through the Python SDK's ConsoleSpanExporter; the motor's status span (which
ophyd-async itself does not record) carries the move. Then a scan of a
SimStage (whose motors move at their velocity: their status spans carry the
``watch`` updates as events) with a SimPointDetector, whose documents are
printed as they come.
"""

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
from bluesky.tracing import trace_plan, tracer
from ophyd_async.core import init_devices
from ophyd_async.sim import PatternGenerator, SimMotor, SimPointDetector, SimStage

from skyrun import RunEngine

provider = TracerProvider(resource=Resource(attributes={SERVICE_NAME: "skyrun-ophyd-async-example"}))
provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)

RE = RunEngine()  # owns the event loop ophyd-async connects on: create it first
with init_devices():
    motor = SimMotor()
    pattern = PatternGenerator()
    stage = SimStage(pattern)
    det = SimPointDetector(pattern, num_channels=2)


@trace_plan(tracer, "demo plan")
def test_tracing_plan():
    yield from bps.abs_set(motor, 5)


RE(bpp.run_wrapper(test_tracing_plan()))
provider.force_flush()

RE.subscribe(lambda name, doc: print(name, doc.get("data", "")))
RE(bps.mv(stage.x.velocity, 20.0))
RE(bp.scan([det], stage.x, -1, 1, 3))
provider.shutdown()
