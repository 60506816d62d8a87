//! Counting what happens to spans, which the SDK does not report: its batch
//! processor drops spans silently when its queue is full, and only logs
//! failed exports.
//!
//! [`EndedCounter`] wraps the exporting span processor and counts ended
//! (sampled) spans on their way in (one processor, so the SDK does not clone
//! every span for a second one). [`CountingExporter`] wraps
//! the exporter and counts the spans it delivered and the export calls that
//! failed, keeping the first error of each [`FailureKind`] (refused, timed
//! out, refused by status, other) so that a report can say what went wrong
//! once, not per batch. At shutdown, `ended - exported` is what never
//! reached the backend.
//!
//! ```
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
//! use skyrun::telemetry::counting::{Counters, CountingExporter, EndedCounter};
//!
//! let counters = Counters::default();
//! let provider = SdkTracerProvider::builder()
//!     .with_span_processor(EndedCounter::new(
//!         SimpleSpanProcessor::new(CountingExporter::new(InMemorySpanExporter::default(), &counters)),
//!         &counters,
//!     ))
//!     .build();
//! provider.tracer("t").start("a").end();
//! provider.shutdown().unwrap();
//! let report = counters.report();
//! assert_eq!((report.spans_ended, report.spans_exported, report.spans_dropped), (1, 1, 0));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

use super::pipeline::ExportReport;

#[derive(Debug, Default)]
struct Counts {
    ended: AtomicU64,
    exported: AtomicU64,
    failed_spans: AtomicU64,
    failed_exports: AtomicU64,
    failures: Mutex<Vec<ExportFailure>>,
    transport_detail: Mutex<Option<String>>,
}

/// What kind of failure an export error is, from the exporter's message.
///
/// ```
/// use skyrun::telemetry::counting::FailureKind;
/// assert_eq!(FailureKind::of("error sending request: tcp connect error: Connection refused (os error 111)"), FailureKind::Refused);
/// assert_eq!(FailureKind::of("HTTP export failed. Url: http://h/v1/traces, Status Code: 404, Response: .."), FailureKind::Status);
/// assert_eq!(FailureKind::of("operation timed out"), FailureKind::TimedOut);
/// assert_eq!(FailureKind::of("HTTP status client error (404 Not Found) for url (http://h/v1/traces)"), FailureKind::Status);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Nothing listens there: the connection was refused.
    Refused,
    /// No answer in time.
    TimedOut,
    /// The collector answered with an error status (HTTP 404, gRPC `Unimplemented`, ...).
    Status,
    /// Anything else (DNS, TLS, an invalid URL, ...).
    Other,
}

impl FailureKind {
    /// The kind of an exporter's error message.
    pub fn of(message: &str) -> FailureKind {
        let m = message.to_ascii_lowercase();
        if m.contains("connection refused")
            || m.contains("os error 111")
            || m.contains("os error 10061")
        {
            FailureKind::Refused
        } else if m.contains("timed out")
            || m.contains("timeout")
            || m.contains("deadline")
            || m.contains("os error 110")
        {
            FailureKind::TimedOut
        } else if m.contains("status code")
            || m.contains("http status")
            || m.contains("grpc-status")
            || m.contains("grpc code: unimplemented")
            || m.contains("grpc code: notfound")
            || m.contains("grpc code: permissiondenied")
            || m.contains("grpc code: unauthenticated")
        {
            FailureKind::Status
        } else {
            FailureKind::Other
        }
    }

    /// `connection refused`, `timed out`, `error status`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "connection refused",
            FailureKind::TimedOut => "timed out",
            FailureKind::Status => "error status",
            FailureKind::Other => "failed",
        }
    }
}

/// The first export error of one kind, and how many exports failed so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFailure {
    /// The kind.
    pub kind: FailureKind,
    /// Failed exports (batches) of this kind.
    pub exports: u64,
    /// The exporter's message for the first one.
    pub first: String,
}

impl fmt::Display for ExportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.first)?;
        if self.exports > 1 {
            write!(f, " (and {} more exports like it)", self.exports - 1)?;
        }
        Ok(())
    }
}

/// Shared span counters (cheap to clone).
#[derive(Debug, Default, Clone)]
pub struct Counters(Arc<Counts>);

impl Counters {
    /// A snapshot of the counts. `spans_dropped` is every ended span that
    /// was not exported: lost to a full queue, to a failed export, or still
    /// queued when the pipeline was shut down.
    pub fn report(&self) -> ExportReport {
        let ended = self.0.ended.load(Ordering::Acquire);
        let exported = self.0.exported.load(Ordering::Acquire);
        ExportReport {
            spans_ended: ended,
            spans_exported: exported,
            spans_dropped: ended.saturating_sub(exported),
            export_errors: self.0.failed_exports.load(Ordering::Acquire),
        }
    }

    /// Spans that were handed to the exporter in a call that failed.
    pub fn spans_failed(&self) -> u64 {
        self.0.failed_spans.load(Ordering::Acquire)
    }

    /// The first failure of each kind, in the order they first happened.
    pub fn failures(&self) -> Vec<ExportFailure> {
        self.0
            .failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Keeps why the last request of an exporter's transport failed, for the
    /// next failed export to report instead of the exporter's own message
    /// (the HTTP exporter says "network error" whatever happened).
    pub fn note_transport_error(&self, detail: String) {
        if let Ok(mut d) = self.0.transport_detail.lock() {
            *d = Some(detail);
        }
    }

    /// Records a failed export with the exporter's `message` (or the
    /// transport's detail noted since the last failure, when there is one).
    pub fn record_export_error(&self, message: &str) {
        let detail = self
            .0
            .transport_detail
            .lock()
            .ok()
            .and_then(|mut d| d.take());
        let message = message
            .strip_prefix("Operation failed: ")
            .unwrap_or(message);
        match detail {
            // The transport's own words; the HTTP exporter's are "network error".
            Some(d) => self.record_failure(&d),
            None => self.record_failure(message),
        }
    }

    /// Records a failed export with the exporter's `message`.
    pub fn record_failure(&self, message: &str) {
        let kind = FailureKind::of(message);
        if let Ok(mut list) = self.0.failures.lock() {
            match list.iter_mut().find(|f| f.kind == kind) {
                Some(f) => f.exports += 1,
                None => list.push(ExportFailure {
                    kind,
                    exports: 1,
                    first: message.to_owned(),
                }),
            }
        }
    }
}

/// A [`SpanProcessor`] that counts ended, sampled spans, then hands them to `P`.
#[derive(Debug)]
pub struct EndedCounter<P> {
    inner: P,
    counters: Counters,
}

impl<P> EndedCounter<P> {
    /// Counts into `counters` in front of `inner`.
    pub fn new(inner: P, counters: &Counters) -> Self {
        EndedCounter {
            inner,
            counters: counters.clone(),
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for EndedCounter<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx)
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.counters.0.ended.fetch_add(1, Ordering::AcqRel);
        }
        self.inner.on_end(span)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// A [`SpanExporter`] wrapper counting exported spans and failed exports.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    counters: Counters,
}

impl<E> CountingExporter<E> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: E, counters: &Counters) -> Self {
        CountingExporter {
            inner,
            counters: counters.clone(),
        }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        let c = &self.counters.0;
        match &result {
            Ok(()) => c.exported.fetch_add(n, Ordering::AcqRel),
            Err(e) => {
                self.counters.record_export_error(&e.to_string());
                c.failed_spans.fetch_add(n, Ordering::AcqRel);
                c.failed_exports.fetch_add(1, Ordering::AcqRel)
            }
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
