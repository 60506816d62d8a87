//! OpenTelemetry across the Python/Rust boundary, through propagators:
//!
//! * the Python context current when a plan yields a message (a `trace_plan`
//!   span) is injected by Python's propagator and extracted here, so it
//!   parents skyrun's span for the message ([`PlanContext`]);
//! * a skyrun context is injected here and extracted by Python around a
//!   Python device's method ([`call_in_context`]), so ophyd's own
//!   "Ophyd Status" span is a child of skyrun's span;
//! * skyrun's finished spans are handed to the Python SDK's global
//!   TracerProvider when one is set ([`bridge_to`]): a Rust batch span
//!   processor exports them, on its own thread, as Python `ReadableSpan`s to
//!   the provider's span processors (so Python's exporters print or send
//!   them with the Python spans, and `InMemorySpanExporter` sees them).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Status as OtelStatus, TraceContextExt};
use opentelemetry::{global, Array, Context, Value as OtelValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};

static HELPERS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `skyrun._otel`, the Python half of the bridge.
pub fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    HELPERS
        .get_or_try_init(py, || py.import("skyrun._otel").map(Bound::unbind))
        .map(|m| m.bind(py))
}

fn inject(cx: &Context) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut carrier));
    carrier
}

fn extract(carrier: &HashMap<String, String>) -> Context {
    global::get_text_map_propagator(|p| p.extract(carrier))
}

/// Follows the Python OpenTelemetry context of a plan, message by message.
pub struct PlanContext {
    /// `get` of the `contextvars.ContextVar` holding Python's current context (None without opentelemetry).
    var: Option<Py<PyAny>>,
    last: Option<Py<PyAny>>,
    cx: Context,
}

impl PlanContext {
    pub fn new(py: Python<'_>) -> Self {
        // The bound `ContextVar.get`, called once per message.
        let var = helpers(py)
            .ok()
            .and_then(|m| m.getattr("CONTEXT_VAR").ok())
            .filter(|v| !v.is_none())
            .and_then(|v| v.getattr("get").ok())
            .map(Bound::unbind);
        PlanContext {
            var,
            last: None,
            cx: Context::new(),
        }
    }

    /// The skyrun context for Python's current context: the same as last time
    /// when Python's has not changed (one ContextVar read), else extracted
    /// from what Python's propagator injects.
    pub fn current(&mut self, py: Python<'_>) -> Context {
        let Some(var) = &self.var else {
            return Context::new();
        };
        let Ok(now) = var.bind(py).call0() else {
            return Context::new();
        };
        if let Some(last) = &self.last {
            if last.as_ptr() == now.as_ptr() {
                return self.cx.clone();
            }
        }
        let carrier: HashMap<String, String> = helpers(py)
            .and_then(|m| m.call_method1("inject", (&now,)))
            .and_then(|c| c.extract())
            .unwrap_or_default();
        self.cx = if carrier.is_empty() {
            Context::new()
        } else {
            extract(&carrier)
        };
        self.last = Some(now.unbind());
        self.cx.clone()
    }
}

/// Calls `f(*args)` with `cx` as Python's current OpenTelemetry context.
pub fn call_in_context<'py>(
    py: Python<'py>,
    cx: &Context,
    f: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    if !cx.span().span_context().is_valid() {
        return f.call1(args.clone());
    }
    let m = helpers(py)?;
    let carrier = inject(cx);
    m.call_method1("call_in_context", (carrier, f, args))
}

/// Hands skyrun's finished spans to a Python SDK TracerProvider.
struct PyExporter {
    provider: Py<PyAny>,
}

impl std::fmt::Debug for PyExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyExporter")
    }
}

fn ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn value_to_py<'py>(py: Python<'py>, v: &OtelValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        OtelValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        OtelValue::I64(i) => i.into_pyobject(py)?.into_any(),
        OtelValue::F64(f) => f.into_pyobject(py)?.into_any(),
        OtelValue::String(s) => s.as_str().into_pyobject(py)?.into_any(),
        OtelValue::Array(a) => match a {
            Array::Bool(v) => PyTuple::new(py, v)?.into_any(),
            Array::I64(v) => PyTuple::new(py, v)?.into_any(),
            Array::F64(v) => PyTuple::new(py, v)?.into_any(),
            Array::String(v) => PyTuple::new(py, v.iter().map(|s| s.as_str()))?.into_any(),
            _ => PyTuple::empty(py).into_any(),
        },
        _ => format!("{v}").into_pyobject(py)?.into_any(),
    })
}

fn attrs_to_py<'py>(
    py: Python<'py>,
    kvs: &[opentelemetry::KeyValue],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for kv in kvs {
        d.set_item(kv.key.as_str(), value_to_py(py, &kv.value)?)?;
    }
    Ok(d)
}

fn span_to_py<'py>(py: Python<'py>, s: &SpanData) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let sc = &s.span_context;
    d.set_item("name", s.name.as_ref())?;
    d.set_item("trace_id", u128::from_be_bytes(sc.trace_id().to_bytes()))?;
    d.set_item("span_id", u64::from_be_bytes(sc.span_id().to_bytes()))?;
    d.set_item("trace_flags", sc.trace_flags().to_u8())?;
    let parent = u64::from_be_bytes(s.parent_span_id.to_bytes());
    d.set_item(
        "parent_span_id",
        if parent == 0 { None } else { Some(parent) },
    )?;
    d.set_item("parent_is_remote", s.parent_span_is_remote)?;
    d.set_item("start_time", ns(s.start_time))?;
    d.set_item("end_time", ns(s.end_time))?;
    d.set_item("attributes", attrs_to_py(py, &s.attributes)?)?;
    let events = PyList::empty(py);
    for e in s.events.iter() {
        events.append((
            e.name.as_ref(),
            ns(e.timestamp),
            attrs_to_py(py, &e.attributes)?,
        ))?;
    }
    d.set_item("events", events)?;
    let (code, desc) = match &s.status {
        OtelStatus::Unset => ("UNSET", String::new()),
        OtelStatus::Ok => ("OK", String::new()),
        OtelStatus::Error { description } => ("ERROR", description.to_string()),
    };
    d.set_item("status_code", code)?;
    d.set_item("status_description", desc)?;
    d.set_item("scope_name", s.instrumentation_scope.name())?;
    d.set_item("scope_version", s.instrumentation_scope.version())?;
    Ok(d)
}

impl SpanExporter for PyExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let r = Python::try_attach(|py| -> PyResult<()> {
            let spans = PyList::empty(py);
            for s in &batch {
                spans.append(span_to_py(py, s)?)?;
            }
            helpers(py)?.call_method1("export", (self.provider.bind(py), spans))?;
            Ok(())
        });
        let out = match r {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                Python::try_attach(|py| e.print(py));
                Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                    e.to_string(),
                ))
            }
            None => Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                "the Python interpreter is shutting down".into(),
            )),
        };
        std::future::ready(out)
    }
}

struct Bridge {
    python: Py<PyAny>,
    rust: SdkTracerProvider,
}

static BRIDGE: Mutex<Option<Bridge>> = Mutex::new(None);

/// Makes skyrun's spans go to the Python SDK provider `provider` (once per provider).
pub fn bridge_to(py: Python<'_>, provider: &Bound<'_, PyAny>) {
    let mut b = BRIDGE.lock();
    if let Some(cur) = b.as_ref() {
        if cur.python.as_ptr() == provider.as_ptr() {
            return;
        }
    }
    let rust = SdkTracerProvider::builder()
        .with_batch_exporter(PyExporter {
            provider: provider.clone().unbind(),
        })
        .build();
    global::set_tracer_provider(rust.clone());
    if let Some(old) = b.replace(Bridge {
        python: provider.clone().unbind(),
        rust,
    }) {
        py.detach(|| {
            let _ = old.rust.shutdown();
        });
    }
}

/// Delivers every span skyrun has finished to the Python provider (detached,
/// since the exporter needs Python).
pub fn flush(py: Python<'_>) {
    let rust = BRIDGE.lock().as_ref().map(|b| b.rust.clone());
    if let Some(rust) = rust {
        py.detach(|| {
            let _ = rust.force_flush();
        });
    }
}

/// Stops the bridge (at exit): flushes and shuts the Rust provider down.
pub fn shutdown(py: Python<'_>) {
    let old = BRIDGE.lock().take();
    if let Some(old) = old {
        py.detach(|| {
            let _ = old.rust.shutdown();
        });
    }
}

static OWN: Mutex<Option<skyrun::telemetry::Telemetry>> = Mutex::new(None);
static PROFILE: Mutex<Option<skyrun::telemetry::profile::ProfileProcessor>> = Mutex::new(None);

/// Starts skyrun's own pipeline for `target` (`none`, `console`,
/// `jsonl:FILE`, `otlp`; `None`: OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set) as the global provider. Returns whether one was started.
pub fn init_target(py: Python<'_>, target: Option<&str>, profile: bool) -> PyResult<bool> {
    use skyrun::telemetry::{Telemetry, TelemetryOptions, TraceTarget};
    let target = match target {
        Some(t) => t
            .parse::<TraceTarget>()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?,
        None => TraceTarget::from_env_default(),
    };
    if matches!(target, TraceTarget::None) && !profile {
        return Ok(false);
    }
    let prof = profile.then(skyrun::telemetry::profile::ProfileProcessor::new);
    *PROFILE.lock() = prof.clone();
    let opts = TelemetryOptions {
        profile: prof,
        ..Default::default()
    };
    let t = py
        .detach(|| Telemetry::init(target, opts))
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    t.install_global();
    if let Some(old) = OWN.lock().replace(t) {
        py.detach(|| drop(old.shutdown()));
    }
    Ok(true)
}

/// Flushes skyrun's own pipeline, if one runs.
pub fn flush_own(py: Python<'_>) {
    let g = OWN.lock();
    if let Some(t) = g.as_ref() {
        py.detach(|| t.force_flush());
    }
}

/// Shuts skyrun's own pipeline down; its export report (dropped spans), if one ran.
pub fn shutdown_own(py: Python<'_>) -> Option<String> {
    let t = OWN.lock().take()?;
    py.detach(|| t.shutdown().ok().map(|r| format!("{r}")))
}

/// The `--profile` table (per span name: count, total, mean, p50, p99, max), if profiling.
pub fn profile_report() -> Option<(usize, String)> {
    let p = PROFILE.lock();
    let r = p.as_ref()?.report();
    Some((
        r.span_count(),
        if r.is_empty() {
            String::new()
        } else {
            r.to_string()
        },
    ))
}
