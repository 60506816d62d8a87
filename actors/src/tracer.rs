//! Which OpenTelemetry tracer a component records its spans with.
//!
//! Devices and the engine each hold a [`SpanTracer`]: the global tracer of a
//! named instrumentation scope (the default, as Bluesky and ophyd use), a tracer
//! taken from a specific provider (tests give each engine its own in-memory
//! provider), or none at all, which skips span work entirely on the hot path.

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};

/// A cheap, clonable handle to the tracer a component records its spans with.
///
/// ```
/// use skyrun_actors::SpanTracer;
/// use opentelemetry::Context;
/// // No tracer: nothing is recorded and no span is created.
/// assert!(SpanTracer::disabled().start("x", &Context::new(), Vec::new()).is_none());
/// ```
#[derive(Clone)]
pub struct SpanTracer(Kind);

#[derive(Clone)]
enum Kind {
    Disabled,
    Global(Cow<'static, str>),
    Fixed(Arc<BoxedTracer>),
}

impl std::fmt::Debug for SpanTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Disabled => f.write_str("SpanTracer::disabled"),
            Kind::Global(name) => write!(f, "SpanTracer::global({name:?})"),
            Kind::Fixed(_) => f.write_str("SpanTracer::from_provider(..)"),
        }
    }
}

impl SpanTracer {
    /// The tracer of scope `name` from whatever provider is global when a span starts.
    pub fn global(name: impl Into<Cow<'static, str>>) -> Self {
        SpanTracer(Kind::Global(name.into()))
    }

    /// The tracer of scope `name` from `provider`.
    pub fn from_provider<P>(provider: &P, name: impl Into<Cow<'static, str>>) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        SpanTracer(Kind::Fixed(Arc::new(BoxedTracer::new(Box::new(
            provider.tracer(name),
        )))))
    }

    /// No tracing: [`start`](Self::start) returns `None` and costs nothing.
    pub fn disabled() -> Self {
        SpanTracer(Kind::Disabled)
    }

    /// Whether spans may be recorded at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.0, Kind::Disabled)
    }

    /// Starts a span named `name` as a child of the span in `parent` (a root when
    /// `parent` holds none). Returns `None` when tracing is disabled or the
    /// provider does not record the span, so callers skip building attributes.
    pub fn start(
        &self,
        name: impl Into<Cow<'static, str>>,
        parent: &Context,
        attributes: Vec<KeyValue>,
    ) -> Option<BoxedSpan> {
        let span = match &self.0 {
            Kind::Disabled => return None,
            Kind::Global(scope) => global::tracer(scope.clone())
                .span_builder(name)
                .with_attributes(attributes)
                .start_with_context(&global::tracer(scope.clone()), parent),
            Kind::Fixed(tracer) => tracer
                .span_builder(name)
                .with_attributes(attributes)
                .start_with_context(tracer.as_ref(), parent),
        };
        span.is_recording().then_some(span)
    }
}
