//! Counting what happens to spans, which the SDK does not report: its batch
//! processor drops spans silently when its queue is full, and only logs
//! failed exports.
//!
//! [`EndedCounter`] wraps the exporting span processor and counts ended
//! (sampled) spans on their way in (one processor, so the SDK does not clone
//! every span for a second one). [`CountingExporter`] wraps
//! the exporter and counts the spans it delivered and the export calls that
//! failed. At shutdown, `ended - exported` is what never reached the backend.
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
            Err(_) => {
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
