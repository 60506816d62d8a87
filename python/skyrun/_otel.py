"""The Python half of skyrun's OpenTelemetry bridge (used by the native module).

* ``CONTEXT_VAR`` / ``inject``: the Python context current when a plan yields
  a message, injected by Python's global propagator for skyrun to extract;
* ``call_in_context``: a Python device method called inside the context
  skyrun propagated (so ophyd's "Ophyd Status" span is a child of skyrun's);
* ``sdk_provider`` / ``export``: skyrun's finished spans handed, as
  ``ReadableSpan``s, to the span processors of the SDK's global provider.
"""

try:
    from opentelemetry import context as _context
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
except ImportError:  # tracing is optional
    _context = None

CONTEXT_VAR = None
if _context is not None:
    _rc = getattr(_context, "_RUNTIME_CONTEXT", None)
    CONTEXT_VAR = getattr(_rc, "_current_context", None)
    if CONTEXT_VAR is None:  # another runtime context: ask the API each time

        class _Current:
            @staticmethod
            def get():
                return _context.get_current()

        CONTEXT_VAR = _Current()


def inject(ctx):
    """The carrier (header dict) of context ``ctx`` from the global propagator."""
    carrier = {}
    _propagate.inject(carrier, context=ctx)
    return carrier


def call_in_context(carrier, fn, args):
    """``fn(*args)`` with the context extracted from ``carrier`` attached."""
    if _context is None:
        return fn(*args)
    token = _context.attach(_propagate.extract(carrier))
    try:
        return fn(*args)
    finally:
        _context.detach(token)


def sdk_provider():
    """The global TracerProvider if it is the SDK's (which skyrun can feed), else None."""
    if _context is None:
        return None
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    p = _trace.get_tracer_provider()
    return p if isinstance(p, TracerProvider) else None


def export(provider, spans):
    """Hands skyrun's finished spans (dicts) to ``provider``'s span processors."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
    from opentelemetry.trace.status import Status, StatusCode

    processor = provider._active_span_processor
    for s in spans:
        flags = TraceFlags(s["trace_flags"])
        context = SpanContext(s["trace_id"], s["span_id"], is_remote=False, trace_flags=flags)
        parent = None
        if s["parent_span_id"] is not None:
            parent = SpanContext(
                s["trace_id"], s["parent_span_id"], is_remote=s["parent_is_remote"], trace_flags=flags
            )
        code = getattr(StatusCode, s["status_code"])
        status = Status(code, s["status_description"] or None) if code is StatusCode.ERROR else Status(code)
        span = ReadableSpan(
            name=s["name"],
            context=context,
            parent=parent,
            resource=provider.resource,
            attributes=s["attributes"],
            events=[Event(name, attrs, timestamp=ts) for name, ts, attrs in s["events"]],
            kind=SpanKind.INTERNAL,
            status=status,
            start_time=s["start_time"],
            end_time=s["end_time"],
            instrumentation_scope=InstrumentationScope(s["scope_name"], s["scope_version"]),
        )
        processor.on_end(span)
