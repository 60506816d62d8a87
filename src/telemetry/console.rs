//! The console exporter: each span as pretty JSON, exactly as OpenTelemetry
//! Python's `ConsoleSpanExporter` prints it, and [`span_to_json`], the span
//! shape that the console and the [JSON-lines](super::jsonl) exporters share.
//!
//! The shape is Python's `ReadableSpan.to_json()`:
//!
//! ```text
//! {
//!     "name": "Bluesky RunEngine set",
//!     "context": {"trace_id": "0x<32 hex>", "span_id": "0x<16 hex>", "trace_state": "[]"},
//!     "kind": "SpanKind.INTERNAL",
//!     "parent_id": "0x<16 hex>" | null,
//!     "start_time": "2026-11-25T09:37:34.033430Z",
//!     "end_time": "2026-11-25T09:37:34.035791Z",
//!     "status": {"status_code": "UNSET"} | {"status_code": "ERROR", "description": "..."},
//!     "attributes": {...},
//!     "events": [{"name": ..., "timestamp": ..., "attributes": {...}}],
//!     "links": [{"context": {...}, "attributes": {...}}],
//!     "resource": {"attributes": {"service.name": ...}, "schema_url": ""}
//! }
//! ```
//!
//! The console output is byte-compatible with Python's: 4-space indentation,
//! non-ASCII characters escaped as `\uXXXX` (Python's `ensure_ascii`), one
//! span after another, each followed by a newline. Two deliberate
//! differences: resource attributes are sorted by key (the Rust SDK keeps them
//! in a hash map), and non-finite floats print as `null` (Python writes the
//! invalid JSON tokens `NaN`/`Infinity`).

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::{json, Map, Value as Json};

/// Where the console exporter writes: standard output (the default, as
/// Python's `ConsoleSpanExporter`), standard error, or any writer.
///
/// ```
/// use skyrun::telemetry::ConsoleOut;
/// let out = ConsoleOut::writer(Vec::<u8>::new());
/// assert_eq!(format!("{out:?}"), "ConsoleOut::Writer(..)");
/// assert!(matches!(ConsoleOut::default(), ConsoleOut::Stdout));
/// ```
#[derive(Default)]
pub enum ConsoleOut {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// Any writer, e.g. a shared buffer in a test.
    Writer(Box<dyn Write + Send>),
}

impl ConsoleOut {
    /// Writes to `w`.
    pub fn writer(w: impl Write + Send + 'static) -> Self {
        ConsoleOut::Writer(Box::new(w))
    }

    fn write_all_and_flush(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            ConsoleOut::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            ConsoleOut::Stderr => {
                let mut out = io::stderr().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            ConsoleOut::Writer(w) => {
                w.write_all(bytes)?;
                w.flush()
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ConsoleOut::Stdout => io::stdout().flush(),
            ConsoleOut::Stderr => io::stderr().flush(),
            ConsoleOut::Writer(w) => w.flush(),
        }
    }
}

impl fmt::Debug for ConsoleOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleOut::Stdout => f.write_str("ConsoleOut::Stdout"),
            ConsoleOut::Stderr => f.write_str("ConsoleOut::Stderr"),
            ConsoleOut::Writer(_) => f.write_str("ConsoleOut::Writer(..)"),
        }
    }
}

/// A [`SpanExporter`] that prints each span as Python's `ConsoleSpanExporter`
/// does. Use it with a `SimpleSpanProcessor`, so that spans print as they
/// end (children first, as in Python).
#[derive(Debug)]
pub struct ConsoleExporter {
    out: Mutex<ConsoleOut>,
    resource: Resource,
}

impl ConsoleExporter {
    /// An exporter printing to `out`.
    pub fn new(out: ConsoleOut) -> Self {
        ConsoleExporter {
            out: Mutex::new(out),
            resource: Resource::builder_empty().build(),
        }
    }
}

fn internal(e: impl fmt::Display) -> OTelSdkError {
    OTelSdkError::InternalFailure(e.to_string())
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut text = Vec::with_capacity(1024 * batch.len());
        for span in &batch {
            write_python_json(&mut text, &span_to_json(span, &self.resource)).map_err(internal)?;
            text.push(b'\n');
        }
        let mut out = self.out.lock().map_err(internal)?;
        out.write_all_and_flush(&text).map_err(internal)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.out.lock().map_err(internal)?.flush().map_err(internal)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
    }
}

/// Writes `value` as Python's `json.dumps(value, indent=4)` would: 4-space
/// indentation, `": "` between keys and values, non-ASCII escaped.
///
/// ```
/// let mut out = Vec::new();
/// skyrun::telemetry::console::write_python_json(&mut out, &serde_json::json!({"unit": "µm", "a": []})).unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(), "{\n    \"unit\": \"\\u00b5m\",\n    \"a\": []\n}");
/// ```
pub fn write_python_json<W: Write>(out: W, value: &Json) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        out,
        AsciiPretty(PrettyFormatter::with_indent(b"    ")),
    );
    value.serialize(&mut ser).map_err(io::Error::other)
}

/// serde_json's pretty formatter, escaping non-ASCII as Python does.
struct AsciiPretty<'a>(PrettyFormatter<'a>);

impl Formatter for AsciiPretty<'_> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A span in the shape of Python's `ReadableSpan.to_json()` (see the
/// [module docs](self)), with `resource` as its resource.
///
/// ```
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use opentelemetry_sdk::Resource;
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let mut span = provider.tracer("t").start("demo plan");
/// span.set_attribute(opentelemetry::KeyValue::new("msg.args", opentelemetry::Value::Array(vec![5_i64].into())));
/// span.end();
/// let data = &exporter.get_finished_spans().unwrap()[0];
/// let resource = Resource::builder_empty().with_service_name("svc").build();
/// let json = skyrun::telemetry::span_to_json(data, &resource);
/// assert_eq!(json["name"], "demo plan");
/// assert_eq!(json["kind"], "SpanKind.INTERNAL");
/// assert_eq!(json["parent_id"], serde_json::Value::Null);
/// assert_eq!(json["context"]["trace_id"].as_str().unwrap().len(), 34);
/// assert_eq!(json["status"], serde_json::json!({"status_code": "UNSET"}));
/// assert_eq!(json["attributes"]["msg.args"], serde_json::json!([5]));
/// assert_eq!(json["resource"], serde_json::json!({"attributes": {"service.name": "svc"}, "schema_url": ""}));
/// ```
pub fn span_to_json(span: &SpanData, resource: &Resource) -> Json {
    let parent_id = if span.parent_span_id == SpanId::INVALID {
        Json::Null
    } else {
        Json::String(format!("0x{}", span.parent_span_id))
    };
    let status = match &span.status {
        Status::Unset => json!({"status_code": "UNSET"}),
        Status::Ok => json!({"status_code": "OK"}),
        Status::Error { description } if description.is_empty() => json!({"status_code": "ERROR"}),
        Status::Error { description } => {
            json!({"status_code": "ERROR", "description": description.as_ref()})
        }
    };
    let events: Vec<Json> = span
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.name.as_ref(),
                "timestamp": iso_time(e.timestamp),
                "attributes": attributes_to_json(&e.attributes),
            })
        })
        .collect();
    let links: Vec<Json> = span
        .links
        .iter()
        .map(|l| {
            json!({
                "context": context_to_json(&l.span_context),
                "attributes": attributes_to_json(&l.attributes),
            })
        })
        .collect();
    json!({
        "name": span.name.as_ref(),
        "context": context_to_json(&span.span_context),
        "kind": kind_name(&span.span_kind),
        "parent_id": parent_id,
        "start_time": iso_time(span.start_time),
        "end_time": iso_time(span.end_time),
        "status": status,
        "attributes": attributes_to_json(&span.attributes),
        "events": events,
        "links": links,
        "resource": resource_to_json(resource),
    })
}

fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Internal => "SpanKind.INTERNAL",
        SpanKind::Server => "SpanKind.SERVER",
        SpanKind::Client => "SpanKind.CLIENT",
        SpanKind::Producer => "SpanKind.PRODUCER",
        SpanKind::Consumer => "SpanKind.CONSUMER",
    }
}

fn context_to_json(cx: &SpanContext) -> Json {
    // Python prints `repr(TraceState)`: the list of "key=value" strings.
    let header = cx.trace_state().header();
    let entries: Vec<String> = header
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| format!("'{s}'"))
        .collect();
    json!({
        "trace_id": format!("0x{}", cx.trace_id()),
        "span_id": format!("0x{}", cx.span_id()),
        "trace_state": format!("[{}]", entries.join(", ")),
    })
}

/// A timestamp as Python's `ns_to_iso_str`: UTC, microseconds, `Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_nanos(1_795_599_454_033_746_123);
/// assert_eq!(skyrun::telemetry::console::iso_time(t), "2026-11-25T09:37:34.033746Z");
/// ```
pub fn iso_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Attributes as a JSON object; a repeated key keeps its first position and
/// its last value, as a Python dict would.
fn attributes_to_json(kvs: &[KeyValue]) -> Json {
    let mut m = Map::with_capacity(kvs.len());
    for kv in kvs {
        m.insert(kv.key.as_str().to_owned(), value_to_json(&kv.value));
    }
    Json::Object(m)
}

fn resource_to_json(resource: &Resource) -> Json {
    let mut attrs: Vec<(&str, Json)> = resource
        .iter()
        .map(|(k, v)| (k.as_str(), value_to_json(v)))
        .collect();
    attrs.sort_by(|a, b| a.0.cmp(b.0));
    let attrs: Map<String, Json> = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    json!({
        "attributes": attrs,
        "schema_url": resource.schema_url().unwrap_or(""),
    })
}

/// An attribute value as typed JSON: bools, integers, floats, strings, and
/// arrays of those as JSON arrays.
///
/// ```
/// use opentelemetry::{Array, Value};
/// use skyrun::telemetry::console::value_to_json;
/// assert_eq!(value_to_json(&Value::I64(5)), serde_json::json!(5));
/// assert_eq!(value_to_json(&Value::F64(5.0)).to_string(), "5.0");
/// assert_eq!(value_to_json(&Value::Array(Array::Bool(vec![true]))), serde_json::json!([true]));
/// ```
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!(b),
        Value::I64(i) => json!(i),
        Value::F64(f) => json!(f),
        Value::String(s) => json!(s.as_str()),
        Value::Array(Array::Bool(a)) => json!(a),
        Value::Array(Array::I64(a)) => json!(a),
        Value::Array(Array::F64(a)) => json!(a),
        Value::Array(Array::String(a)) => json!(a.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        other => json!(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        Span as _, TraceContextExt as _, TraceFlags, TraceId, TraceState, Tracer as _,
        TracerProvider as _,
    };
    use opentelemetry::Context;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    #[test]
    fn error_status_events_links_and_trace_state_as_python() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("t");
        let state = TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).unwrap();
        let remote = SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            TraceFlags::SAMPLED,
            true,
            state,
        );
        let linked = SpanContext::new(
            TraceId::from(8),
            SpanId::from(10),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new().with_remote_span_context(remote);
        let mut span = tracer
            .span_builder("Bluesky RunEngine wait")
            .with_links(vec![opentelemetry::trace::Link::with_context(linked)])
            .start_with_context(&tracer, &cx);
        span.add_event(
            "exception",
            vec![KeyValue::new("exception.message", "µ-stall")],
        );
        span.set_status(Status::error("WaitTimeout: µ"));
        span.end();
        let data = &exporter.get_finished_spans().unwrap()[0];
        let v = span_to_json(data, &Resource::builder_empty().build());

        assert_eq!(v["parent_id"], "0x0000000000000009");
        assert_eq!(
            v["context"]["trace_id"],
            "0x00000000000000000000000000000007"
        );
        assert_eq!(v["context"]["trace_state"], "['vendor=v1', 'other=x']");
        assert_eq!(
            v["status"],
            json!({"status_code": "ERROR", "description": "WaitTimeout: µ"})
        );
        assert_eq!(v["events"][0]["name"], "exception");
        assert_eq!(v["events"][0]["attributes"]["exception.message"], "µ-stall");
        assert_eq!(v["events"][0]["timestamp"].as_str().unwrap().len(), 27);
        assert_eq!(v["links"][0]["context"]["span_id"], "0x000000000000000a");
        assert_eq!(v["links"][0]["attributes"], json!({}));
        assert_eq!(v["resource"], json!({"attributes": {}, "schema_url": ""}));

        let mut out = Vec::new();
        write_python_json(&mut out, &v["status"]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"status_code\": \"ERROR\",\n    \"description\": \"WaitTimeout: \\u00b5\"\n}"
        );
    }

    #[test]
    fn astral_characters_escape_as_surrogate_pairs() {
        let mut out = Vec::new();
        write_python_json(&mut out, &json!("a😀")).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\\ud83d\\ude00\"");
    }
}
