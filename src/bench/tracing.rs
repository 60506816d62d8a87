//! Tracing for benchmarks: every span recorded and handed to a span
//! processor. The default, [`SpanProcessorKind::Batch`], is the SDK's batch
//! processor exporting to an exporter that only counts, so the cost measured
//! is the engine's and the SDK's, not a backend's. The other kinds take the
//! export thread out, to show what it costs: `simple` exports on the thread
//! that ends the span, `discard` drops every span as it ends (span creation
//! alone).

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SdkTracerProvider, SimpleSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
    TracerProviderBuilder,
};
use serde::Serialize;
use skyrun_actors::SpanTracer;

use crate::telemetry::counting::{Counters, CountingExporter, EndedCounter};
use crate::telemetry::pipeline::batch_processor;
use crate::telemetry::profile::ProfileProcessor;

/// The batch queue: large enough that a benchmark burst drops nothing, small
/// enough not to dominate memory (the SDK preallocates it).
const QUEUE: usize = 1 << 16;

/// What a traced case hands its ended spans to.
///
/// ```
/// use skyrun::bench::SpanProcessorKind;
/// assert_eq!("simple".parse::<SpanProcessorKind>(), Ok(SpanProcessorKind::Simple));
/// assert!("fast".parse::<SpanProcessorKind>().unwrap_err().contains("batch, simple, discard"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanProcessorKind {
    /// The SDK's batch processor (export thread), as `skyrun run` uses: what
    /// the issue's tracing targets are measured with.
    #[default]
    Batch,
    /// The SDK's simple processor: each span exported on the thread that ends it.
    Simple,
    /// A processor that drops every span as it ends: span creation alone.
    /// Every span then counts as dropped.
    Discard,
}

impl SpanProcessorKind {
    /// Every kind, in the order `--span-processor` lists them.
    pub const ALL: [SpanProcessorKind; 3] = [
        SpanProcessorKind::Batch,
        SpanProcessorKind::Simple,
        SpanProcessorKind::Discard,
    ];

    /// The name `--span-processor` takes.
    pub fn name(self) -> &'static str {
        match self {
            SpanProcessorKind::Batch => "batch",
            SpanProcessorKind::Simple => "simple",
            SpanProcessorKind::Discard => "discard",
        }
    }
}

impl std::str::FromStr for SpanProcessorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        super::by_name(
            s,
            SpanProcessorKind::ALL,
            SpanProcessorKind::name,
            "span processor",
        )
    }
}

/// Accepts every span and does nothing with it (the counting wrapper counts).
#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// Drops every span as it ends.
#[derive(Debug)]
struct DiscardProcessor;

impl SpanProcessor for DiscardProcessor {
    fn on_start(&self, _: &mut Span, _: &Context) {}
    fn on_end(&self, _: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

pub(super) struct BenchTracing {
    provider: SdkTracerProvider,
    counters: Counters,
}

impl BenchTracing {
    pub fn new(kind: SpanProcessorKind) -> Self {
        Self::build(kind, SdkTracerProvider::builder())
    }

    /// As [`new`](Self::new), with `profile` also recording every span's duration.
    pub fn with_profile(kind: SpanProcessorKind, profile: ProfileProcessor) -> Self {
        Self::build(
            kind,
            SdkTracerProvider::builder().with_span_processor(profile),
        )
    }

    fn build(kind: SpanProcessorKind, builder: TracerProviderBuilder) -> Self {
        let counters = Counters::default();
        let builder = match kind {
            SpanProcessorKind::Batch => {
                builder.with_span_processor(batch_processor(NullExporter, &counters, QUEUE))
            }
            SpanProcessorKind::Simple => builder.with_span_processor(EndedCounter::new(
                SimpleSpanProcessor::new(CountingExporter::new(NullExporter, &counters)),
                &counters,
            )),
            SpanProcessorKind::Discard => {
                builder.with_span_processor(EndedCounter::new(DiscardProcessor, &counters))
            }
        };
        BenchTracing {
            provider: builder.build(),
            counters,
        }
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
