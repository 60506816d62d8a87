"""The example of Bluesky's tracing documentation, with only its imports
changed (ophyd.sim -> skyrun.sim, bluesky.run_engine -> skyrun): it prints
the same four spans, with the same parent links, through the Python SDK's
ConsoleSpanExporter."""

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from skyrun.sim import det1
import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from skyrun import RunEngine
from bluesky.tracing import trace_plan, tracer
resource = Resource(attributes={SERVICE_NAME: "bluesky-docs-example"})
traceProvider = TracerProvider(resource=resource)
traceProvider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(traceProvider)
RE = RunEngine()
@trace_plan(tracer, "demo plan")
def test_tracing_plan():
    yield from bps.abs_set(det1._motor, 5)
RE(bpp.run_wrapper(test_tracing_plan()))
traceProvider.shutdown()
