//! Carrying span context across actor (and process) boundaries.
//!
//! Every message to a device carries a [`TraceCarrier`]: the sender's span
//! context injected with an OpenTelemetry [`TextMapPropagator`], exactly as it
//! would travel in HTTP headers. The device extracts it and parents its spans
//! under it. The same code works when the device lives in another process.
//! Which propagators run is chosen by `OTEL_PROPAGATORS`
//! (see [`propagator_from_env`]).

use std::borrow::Cow;

use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{global, Context};
use opentelemetry_sdk::propagation::BaggagePropagator;

use crate::w3c::W3cTraceContext;
use thiserror::Error;

/// The propagated span context of a message: header-style key/value pairs.
///
/// Empty (and allocation-free) when the sender had no valid span.
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// use opentelemetry::Context;
/// use opentelemetry_sdk::propagation::TraceContextPropagator;
/// use skyrun_actors::TraceCarrier;
///
/// let sc = SpanContext::new(TraceId::from(7), SpanId::from(9), TraceFlags::SAMPLED, false, TraceState::default());
/// let cx = Context::new().with_remote_span_context(sc);
/// let prop = TraceContextPropagator::new();
/// let carrier = TraceCarrier::inject_with(&prop, &cx);
/// assert_eq!(carrier.get("traceparent"), Some("00-00000000000000000000000000000007-0000000000000009-01"));
/// let back = carrier.extract_with(&prop);
/// assert_eq!(back.span().span_context().span_id(), SpanId::from(9));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceCarrier(Vec<(Cow<'static, str>, String)>);

impl TraceCarrier {
    /// An empty carrier.
    pub fn empty() -> Self {
        TraceCarrier(Vec::new())
    }

    /// Whether the carrier holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The span context of `cx`, injected with the global propagator (W3C
    /// tracecontext when none is installed).
    pub fn inject(cx: &Context) -> Self {
        if !cx.span().span_context().is_valid() {
            return TraceCarrier::empty();
        }
        with_global_propagator(|p| TraceCarrier::inject_with(p, cx))
    }

    /// The span context of `cx`, injected with `propagator`.
    pub fn inject_with(propagator: &dyn TextMapPropagator, cx: &Context) -> Self {
        let mut carrier = TraceCarrier::empty();
        if cx.span().span_context().is_valid() {
            propagator.inject_context(cx, &mut carrier);
        }
        carrier
    }

    /// The context carried, extracted with the global propagator (empty if none).
    pub fn extract(&self) -> Context {
        if self.is_empty() {
            return Context::new();
        }
        with_global_propagator(|p| self.extract_with(p))
    }

    /// The context carried, extracted with `propagator`.
    pub fn extract_with(&self, propagator: &dyn TextMapPropagator) -> Context {
        propagator.extract_with_context(&Context::new(), self)
    }

    /// The value of one header, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            // Keys are usually stored exactly as asked for: compare bytes first.
            .find(|(k, _)| k == key || k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The carried headers.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }
}

impl Injector for TraceCarrier {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            // An empty header (e.g. no tracestate) carries nothing.
            return;
        }
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((intern(key), value)),
        }
    }
}

/// Runs `f` with the global propagator, or with W3C tracecontext when none is
/// installed, so in-process actors still link up.
fn with_global_propagator<T>(mut f: impl FnMut(&dyn TextMapPropagator) -> T) -> T {
    global::get_text_map_propagator(|p| {
        if p.fields().next().is_none() {
            f(&W3cTraceContext)
        } else {
            f(p)
        }
    })
}

/// The header names the known propagators write, kept without allocating.
fn intern(key: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 4] = ["traceparent", "tracestate", "baggage", "uber-trace-id"];
    match KNOWN.iter().find(|k| **k == key) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(key.to_owned()),
    }
}

impl Extractor for TraceCarrier {
    fn get(&self, key: &str) -> Option<&str> {
        TraceCarrier::get(self, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k).collect()
    }
}

/// `OTEL_PROPAGATORS` named a propagator skyrun does not know.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("OTEL_PROPAGATORS: unknown propagator '{0}' (known: tracecontext, baggage, jaeger, none)")]
pub struct UnknownPropagator(pub String);

/// The propagator named by a comma-separated list in the `OTEL_PROPAGATORS`
/// syntax: `tracecontext`, `baggage`, `jaeger`, `none`.
///
/// ```
/// use skyrun_actors::propagation::propagator_from_list;
/// use opentelemetry::propagation::TextMapPropagator;
/// let p = propagator_from_list("tracecontext,jaeger").unwrap();
/// let fields: Vec<_> = p.fields().collect();
/// assert!(fields.contains(&"traceparent") && fields.contains(&"uber-trace-id"));
/// assert!(propagator_from_list("b3").unwrap_err().to_string().contains("'b3'"));
/// ```
pub fn propagator_from_list(list: &str) -> Result<TextMapCompositePropagator, UnknownPropagator> {
    let mut props: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "tracecontext" => props.push(Box::new(W3cTraceContext)),
            "baggage" => props.push(Box::new(BaggagePropagator::new())),
            // Deprecated upstream in favour of W3C, still what Jaeger clients send.
            #[allow(deprecated)]
            "jaeger" => props.push(Box::new(opentelemetry_jaeger_propagator::Propagator::new())),
            "none" => {}
            other => return Err(UnknownPropagator(other.to_owned())),
        }
    }
    Ok(TextMapCompositePropagator::new(props))
}

/// The propagator `OTEL_PROPAGATORS` asks for (default `tracecontext,baggage`).
pub fn propagator_from_env() -> Result<TextMapCompositePropagator, UnknownPropagator> {
    let list = std::env::var("OTEL_PROPAGATORS").unwrap_or_else(|_| "tracecontext,baggage".into());
    propagator_from_list(&list)
}

/// Installs [`propagator_from_env`] as the global propagator.
pub fn install_propagator_from_env() -> Result<(), UnknownPropagator> {
    global::set_text_map_propagator(propagator_from_env()?);
    Ok(())
}

/// The context a launcher handed over in the environment: `TRACEPARENT`
/// (and `TRACESTATE`), or `UBER_TRACE_ID` for Jaeger. Empty if none.
pub fn context_from_env() -> Context {
    let mut carrier = TraceCarrier::empty();
    for (var, key) in [
        ("TRACEPARENT", "traceparent"),
        ("TRACESTATE", "tracestate"),
        ("UBER_TRACE_ID", "uber-trace-id"),
    ] {
        if let Ok(v) = std::env::var(var) {
            Injector::set(&mut carrier, key, v);
        }
    }
    if carrier.is_empty() {
        return Context::new();
    }
    let prop = propagator_from_list("tracecontext,jaeger").expect("known propagators");
    carrier.extract_with(&prop)
}
