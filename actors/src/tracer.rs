//! Which OpenTelemetry tracer a component records its spans with.
//!
//! Devices and the engine each hold a [`SpanTracer`]: the global tracer of a
//! named instrumentation scope (the default, as Bluesky and ophyd use), a tracer
//! taken from a specific provider (tests give each engine its own in-memory
//! provider), or none at all, which skips span work entirely on the hot path.
//!
//! A tracer taken from the SDK's own provider is held as the concrete
//! `SdkTracer`, so its spans ([`ActiveSpan::Sdk`]) are not boxed behind the
//! object-safe wrappers the generic API needs: one allocation and one copy of
//! the span less per span, on the per-message path.

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span, SpanContext, Status as SpanStatus, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

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
    // Behind an `Arc`: the tracer is ~100 bytes and travels inside every
    // StatusBuilder, which is moved on each builder call.
    Sdk(Arc<SdkTracer>),
    Fixed(Arc<BoxedTracer>),
}

impl std::fmt::Debug for SpanTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Disabled => f.write_str("SpanTracer::disabled"),
            Kind::Global(name) => write!(f, "SpanTracer::global({name:?})"),
            Kind::Sdk(_) | Kind::Fixed(_) => f.write_str("SpanTracer::from_provider(..)"),
        }
    }
}

impl SpanTracer {
    /// The tracer of scope `name` from whatever provider is global when a span starts.
    pub fn global(name: impl Into<Cow<'static, str>>) -> Self {
        SpanTracer(Kind::Global(name.into()))
    }

    /// The tracer of scope `name` from `provider` (unboxed when it is the SDK's
    /// `SdkTracerProvider`).
    pub fn from_provider<P>(provider: &P, name: impl Into<Cow<'static, str>>) -> Self
    where
        P: TracerProvider + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        if let Some(sdk) = (provider as &dyn Any).downcast_ref::<SdkTracerProvider>() {
            return SpanTracer(Kind::Sdk(Arc::new(sdk.tracer(name))));
        }
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
    ) -> Option<ActiveSpan> {
        self.start_at(name, parent, attributes, None)
    }

    /// [`start`](Self::start), with the start time given (so a span and an
    /// attribute can share one clock reading).
    pub fn start_at(
        &self,
        name: impl Into<Cow<'static, str>>,
        parent: &Context,
        attributes: Vec<KeyValue>,
        start_time: Option<SystemTime>,
    ) -> Option<ActiveSpan> {
        let name = name.into();
        let span = match &self.0 {
            Kind::Disabled => return None,
            Kind::Global(scope) => ActiveSpan::Boxed(start_span(
                &global::tracer(scope.clone()),
                name,
                parent,
                attributes,
                start_time,
            )),
            Kind::Sdk(tracer) => ActiveSpan::Sdk(start_span(
                tracer.as_ref(),
                name,
                parent,
                attributes,
                start_time,
            )),
            Kind::Fixed(tracer) => ActiveSpan::Boxed(start_span(
                tracer.as_ref(),
                name,
                parent,
                attributes,
                start_time,
            )),
        };
        span.is_recording().then_some(span)
    }
}

/// Starts a span of `tracer` under `parent`, at `start_time` if given.
fn start_span<T: Tracer>(
    tracer: &T,
    name: Cow<'static, str>,
    parent: &Context,
    attributes: Vec<KeyValue>,
    start_time: Option<SystemTime>,
) -> T::Span {
    let mut b = tracer.span_builder(name).with_attributes(attributes);
    b.start_time = start_time;
    b.start_with_context(tracer, parent)
}

/// A span started by a [`SpanTracer`]: the SDK's span itself, or any other
/// provider's behind a box.
///
/// ```
/// use opentelemetry::{trace::Span as _, Context};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use skyrun_actors::{ActiveSpan, SpanTracer};
/// let provider = SdkTracerProvider::builder().build();
/// let mut span = SpanTracer::from_provider(&provider, "t")
///     .start("work", &Context::new(), Vec::new())
///     .expect("recorded");
/// assert!(matches!(span, ActiveSpan::Sdk(_)));
/// span.end();
/// ```
#[derive(Debug)]
// Unboxed on purpose: boxing the SDK span is the allocation this type avoids.
#[allow(clippy::large_enum_variant)]
pub enum ActiveSpan {
    /// A span of the SDK's provider.
    Sdk(opentelemetry_sdk::trace::Span),
    /// A span of another provider (or the global one).
    Boxed(BoxedSpan),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            ActiveSpan::Sdk($s) => $e,
            ActiveSpan::Boxed($s) => $e,
        }
    };
}

impl Span for ActiveSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        each!(self, s => s.add_event_with_timestamp(name, timestamp, attributes))
    }

    fn span_context(&self) -> &SpanContext {
        each!(self, s => s.span_context())
    }

    fn is_recording(&self) -> bool {
        each!(self, s => s.is_recording())
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        each!(self, s => s.set_attribute(attribute))
    }

    fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        each!(self, s => s.set_attributes(attributes))
    }

    fn set_status(&mut self, status: SpanStatus) {
        each!(self, s => s.set_status(status))
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        each!(self, s => s.update_name(new_name))
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        each!(self, s => s.add_link(span_context, attributes))
    }

    fn record_error(&mut self, err: &dyn Error) {
        each!(self, s => s.record_error(err))
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        each!(self, s => s.end_with_timestamp(timestamp))
    }
}

/// Records an error on `span` as the OpenTelemetry semantic conventions
/// describe it: an `exception` event with `exception.type` (Bluesky's or
/// ophyd's exception name where it has one, such as `FailedStatus`),
/// `exception.message` and `exception.escaped` (whether the error left the
/// span's scope, as a failed message does; a Status that fails is only
/// marked). Rust errors carry no stack trace, so there is no
/// `exception.stacktrace`.
///
/// ```
/// use opentelemetry::trace::{Tracer, TracerProvider};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let mut span = provider.tracer("t").start("s");
/// skyrun_actors::record_exception(&mut span, "FailedStatus", "it broke".into(), true);
/// drop(span);
/// let ev = &exporter.get_finished_spans().unwrap()[0].events.events[0];
/// assert_eq!(ev.name, "exception");
/// let ty = ev.attributes.iter().find(|kv| kv.key.as_str() == "exception.type").unwrap();
/// assert_eq!(ty.value.as_str(), "FailedStatus");
/// ```
pub fn record_exception<S: Span + ?Sized>(
    span: &mut S,
    type_name: &'static str,
    message: String,
    escaped: bool,
) {
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", type_name),
            KeyValue::new("exception.message", message),
            KeyValue::new("exception.escaped", escaped),
        ],
    );
}
