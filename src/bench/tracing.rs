//! Tracing for benchmarks: every span recorded and exported by a batch
//! processor to an exporter that only counts, so the cost measured is the
//! engine's and the SDK's, not a backend's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use skyrun_actors::SpanTracer;

/// The batch queue: sized so a benchmark burst never drops a span.
const QUEUE: usize = 1 << 16;

#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicU64>);

#[derive(Debug)]
struct CountingExporter(Counter);

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0 .0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Counts ended spans in front of the batch processor (one processor, so the
/// SDK does not clone every span for a second one).
#[derive(Debug)]
struct EndedCounter(Counter, BatchSpanProcessor);

impl SpanProcessor for EndedCounter {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.1.on_start(span, cx)
    }
    fn on_end(&self, span: SpanData) {
        self.0 .0.fetch_add(1, Ordering::Relaxed);
        self.1.on_end(span)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.1.force_flush()
    }
    fn shutdown_with_timeout(&self, t: Duration) -> OTelSdkResult {
        self.1.shutdown_with_timeout(t)
    }
}

pub(super) struct BenchTracing {
    provider: SdkTracerProvider,
    ended: Counter,
    exported: Counter,
}

impl BenchTracing {
    pub fn new() -> Self {
        let (ended, exported) = (Counter::default(), Counter::default());
        let batch = BatchSpanProcessor::builder(CountingExporter(exported.clone()))
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(QUEUE)
                    .with_max_export_batch_size(4096)
                    .with_scheduled_delay(Duration::from_millis(50))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(EndedCounter(ended.clone(), batch))
            .build();
        BenchTracing {
            provider,
            ended,
            exported,
        }
    }

    pub fn tracer(&self, scope: &'static str) -> SpanTracer {
        SpanTracer::from_provider(&self.provider, scope)
    }

    /// Shuts the provider down; returns (exported, dropped).
    pub fn finish(self) -> (u64, u64) {
        let _ = self.provider.shutdown();
        let ended = self.ended.0.load(Ordering::Relaxed);
        let exported = self.exported.0.load(Ordering::Relaxed);
        (exported, ended.saturating_sub(exported))
    }
}
