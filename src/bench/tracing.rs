//! Tracing for benchmarks: every span recorded and exported by a batch
//! processor to an exporter that only counts, so the cost measured is the
//! engine's and the SDK's, not a backend's.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use skyrun_actors::SpanTracer;

use crate::telemetry::counting::Counters;
use crate::telemetry::pipeline::batch_processor;

/// The batch queue: large enough that a benchmark burst drops nothing, small
/// enough not to dominate memory (the SDK preallocates it).
const QUEUE: usize = 1 << 16;

/// Accepts every span and does nothing with it (the counting wrapper counts).
#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

pub(super) struct BenchTracing {
    provider: SdkTracerProvider,
    counters: Counters,
}

impl BenchTracing {
    pub fn new() -> Self {
        let counters = Counters::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch_processor(NullExporter, &counters, QUEUE))
            .build();
        BenchTracing { provider, counters }
    }

    pub fn tracer(&self, scope: &'static str) -> SpanTracer {
        SpanTracer::from_provider(&self.provider, scope)
    }

    /// Shuts the provider down; returns (exported, dropped).
    pub fn finish(self) -> (u64, u64) {
        let _ = self.provider.shutdown();
        let r = self.counters.report();
        (r.spans_exported, r.spans_dropped)
    }
}
