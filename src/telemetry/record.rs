//! Span records: the plain data of an ended span (names, ids, times, status,
//! attributes) that the renderers built on top of tracing read, whichever way
//! the spans came: recorded live by a [`SpanRecorder`] next to the exporters,
//! or read back from a `--trace jsonl:FILE` file with [`read_spans`].
//!
//! The Chrome trace ([`chrome`](super::chrome)) and the HTML timeline
//! ([`crate::timeline`]) take `&[SpanRecord]`; neither knows about the engine.
//!
//! ```
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use skyrun::telemetry::record::SpanRecorder;
//!
//! let recorder = SpanRecorder::new();
//! let provider = SdkTracerProvider::builder().with_span_processor(recorder.clone()).build();
//! provider.tracer("t").start("step").end();
//! let spans = recorder.take();
//! assert_eq!(spans[0].name, "step");
//! assert_eq!(spans[0].lane(), "engine");
//! assert!(spans[0].end_ns >= spans[0].start_ns);
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, Status};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::console::value_to_json;

/// One ended span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The span name (`Bluesky RunEngine set`, `Ophyd Status`, a plan name...).
    pub name: String,
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, when the span has one.
    pub parent_id: Option<String>,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End, in nanoseconds since the Unix epoch (never before the start).
    pub end_ns: u64,
    /// The status description when the span ended with an ERROR status
    /// (`Some("")` when it had none).
    pub error: Option<String>,
    /// The attributes, as typed JSON values.
    pub attributes: Map<String, Value>,
}

impl SpanRecord {
    /// The record of an SDK span.
    pub fn from_span_data(span: &SpanData) -> Self {
        let parent_id =
            (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_string());
        let error = match &span.status {
            Status::Error { description } => Some(description.to_string()),
            _ => None,
        };
        let attributes = span
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str().to_owned(), value_to_json(&kv.value)))
            .collect();
        let start_ns = unix_ns(span.start_time);
        SpanRecord {
            name: span.name.to_string(),
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_id,
            start_ns,
            end_ns: unix_ns(span.end_time).max(start_ns),
            error,
            attributes,
        }
    }

    /// The record of one span in the shape the console and JSON-lines
    /// exporters write (see [`span_to_json`](super::span_to_json)).
    ///
    /// ```
    /// use skyrun::telemetry::record::SpanRecord;
    /// let v = serde_json::json!({
    ///     "name": "Ophyd Status",
    ///     "context": {"trace_id": "0x0af7651916cd43dd8448eb211c80319c", "span_id": "0x00f067aa0ba902b7"},
    ///     "parent_id": null,
    ///     "start_time": "2026-11-25T09:37:34.033430Z",
    ///     "end_time": "2026-11-25T09:37:34.035791Z",
    ///     "status": {"status_code": "ERROR", "description": "boom"},
    ///     "attributes": {"positioner_name": "motor"},
    /// });
    /// let r = SpanRecord::from_json(&v).unwrap();
    /// assert_eq!((r.span_id.as_str(), r.end_ns - r.start_ns), ("00f067aa0ba902b7", 2_361_000));
    /// assert_eq!((r.lane(), r.error.as_deref()), ("motor", Some("boom")));
    /// assert!(SpanRecord::from_json(&serde_json::json!({"name": 1})).unwrap_err().contains("name"));
    /// ```
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let text = |key: &str, v: &Value| -> Result<String, String> {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("'{key}' is missing or not a string"))
        };
        let hex = |key: &str, v: &Value| -> Result<String, String> {
            let s = text(key, v)?;
            Ok(s.strip_prefix("0x").unwrap_or(&s).to_owned())
        };
        let time = |key: &str| -> Result<u64, String> {
            let s = text(key, &v[key])?;
            let t = chrono::DateTime::parse_from_rfc3339(&s)
                .map_err(|e| format!("'{key}' is not a timestamp ({s}): {e}"))?;
            let ns = t
                .timestamp_nanos_opt()
                .ok_or_else(|| format!("'{key}' is out of range ({s})"))?;
            u64::try_from(ns).map_err(|_| format!("'{key}' is before 1970 ({s})"))
        };
        let name = text("name", &v["name"])?;
        let trace_id = hex("context.trace_id", &v["context"]["trace_id"])?;
        let span_id = hex("context.span_id", &v["context"]["span_id"])?;
        let parent_id = match &v["parent_id"] {
            Value::Null => None,
            p => Some(hex("parent_id", p)?),
        };
        let (start_ns, end_ns) = (time("start_time")?, time("end_time")?);
        let error = match v["status"]["status_code"].as_str() {
            Some("ERROR") => Some(v["status"]["description"].as_str().unwrap_or("").to_owned()),
            _ => None,
        };
        let attributes = match &v["attributes"] {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => return Err("'attributes' is not an object".to_owned()),
        };
        Ok(SpanRecord {
            name,
            trace_id,
            span_id,
            parent_id,
            start_ns,
            end_ns: end_ns.max(start_ns),
            error,
            attributes,
        })
    }

    /// The actor the span ran on: the device for an `Ophyd Status` span
    /// (its `device_name`, `positioner_name` or `obj_name` attribute),
    /// `engine` for everything else (the engine's method spans, the run
    /// span, plan spans).
    pub fn lane(&self) -> &str {
        if self.name == "Ophyd Status" {
            for key in ["device_name", "positioner_name", "obj_name"] {
                if let Some(Value::String(s)) = self.attributes.get(key) {
                    return s;
                }
            }
            return "device";
        }
        "engine"
    }

    /// How long the span lasted.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_ns.saturating_sub(self.start_ns))
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A spans file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadSpansError {
    /// The file could not be opened or read.
    #[error("cannot read spans file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a span.
    #[error("{}:{line}: not a span: {reason}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads a spans file: one span per line as `--trace jsonl:FILE` writes it,
/// or pretty span objects one after another as `--trace console` (and
/// OpenTelemetry Python's `ConsoleSpanExporter`) prints them. Something
/// that is not a span is an error naming the file and line.
pub fn read_spans(path: &Path) -> Result<Vec<SpanRecord>, ReadSpansError> {
    let text = fs::read_to_string(path).map_err(|source| ReadSpansError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_spans(&text).map_err(|(line, reason)| ReadSpansError::BadLine {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parses span objects (one per line, or pretty-printed one after another)
/// into records; on error, the 1-based line where the bad object starts and why.
///
/// ```
/// use skyrun::telemetry::record::parse_spans;
/// let err = parse_spans("\n{oops\n").unwrap_err();
/// assert_eq!(err.0, 2);
/// assert!(parse_spans("").unwrap().is_empty());
/// let span = r#"{"name": "s", "context": {"trace_id": "0x1", "span_id": "0x2"}, "parent_id": null,
///     "start_time": "2026-01-01T00:00:00.000000Z", "end_time": "2026-01-01T00:00:00.000001Z"}"#;
/// // Pretty objects back to back, as a console exporter prints them.
/// assert_eq!(parse_spans(&format!("{span}\n{span}")).unwrap().len(), 2);
/// assert_eq!(parse_spans(&format!("{span}\n[1]")).unwrap_err().0, 3);
/// ```
pub fn parse_spans(text: &str) -> Result<Vec<SpanRecord>, (usize, String)> {
    let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut spans = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        // Where the next object starts: after the whitespace that follows the last one.
        let rest = &text[stream.byte_offset()..];
        let start = stream.byte_offset() + (rest.len() - rest.trim_start().len());
        match stream.next() {
            None => return Ok(spans),
            Some(Err(e)) => return Err((e.line(), e.to_string())),
            Some(Ok(v)) => spans.push(SpanRecord::from_json(&v).map_err(|e| (line_at(start), e))?),
        }
    }
}

/// A [`SpanProcessor`] that keeps a [`SpanRecord`] of every span that ends,
/// in memory (for `--timeline` and `--trace chrome:FILE`). Clones share the
/// records.
#[derive(Debug, Clone, Default)]
pub struct SpanRecorder {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

impl SpanRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records so far, leaving the recorder empty.
    pub fn take(&self) -> Vec<SpanRecord> {
        std::mem::take(&mut *self.spans.lock())
    }

    /// How many spans were recorded.
    pub fn len(&self) -> usize {
        self.spans.lock().len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SpanProcessor for SpanRecorder {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let record = SpanRecord::from_span_data(&span);
        self.spans.lock().push(record);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
