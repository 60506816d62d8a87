//! W3C tracecontext (`traceparent`/`tracestate`) propagation without the
//! per-message formatting cost.
//!
//! [`W3cTraceContext`] is a [`TextMapPropagator`] that writes and reads
//! exactly what the SDK's `TraceContextPropagator` does, but encodes the
//! canonical `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, 55 bytes) with a
//! table-driven hex codec ([`const_hex`]) instead of `format!` and
//! `from_str_radix`. Profiling a traced `set`+`wait` showed the SDK codec
//! costing ~6,000 instructions per message (a fifth of all tracing work);
//! this one costs a few hundred. Anything that is not the canonical form
//! (other versions, upper case, whitespace, extra fields, garbage) is handed
//! to the SDK's propagator, so every input gives the SDK's answer; a
//! property test (`tests/w3c_propagator.rs`) checks that against the SDK.

use std::str::FromStr;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// `00-` + 32 + `-` + 16 + `-` + 2.
const CANONICAL_LEN: usize = 55;

/// The W3C tracecontext propagator skyrun installs for `tracecontext`.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// use opentelemetry::Context;
/// use skyrun_actors::{TraceCarrier, W3cTraceContext};
///
/// let sc = SpanContext::new(TraceId::from(0xabc), SpanId::from(0x12), TraceFlags::SAMPLED, false, TraceState::default());
/// let cx = Context::new().with_remote_span_context(sc);
/// let carrier = TraceCarrier::inject_with(&W3cTraceContext, &cx);
/// assert_eq!(carrier.get("traceparent"), Some("00-00000000000000000000000000000abc-0000000000000012-01"));
/// let back = carrier.extract_with(&W3cTraceContext);
/// assert_eq!(back.span().span_context().trace_id(), TraceId::from(0xabc));
/// assert!(back.span().span_context().is_remote());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct W3cTraceContext;

/// The header names, as the `fields` API wants them (owned, made once).
fn fields_storage() -> &'static [String; 2] {
    static FIELDS: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()])
}

/// The canonical `traceparent` of `sc` (version 00, only the sampled flag kept).
fn encode(sc: &SpanContext) -> String {
    let mut buf = [0u8; CANONICAL_LEN];
    buf[..3].copy_from_slice(b"00-");
    // The slices have exactly twice the input length, so encoding cannot fail.
    let _ = const_hex::encode_to_slice(sc.trace_id().to_bytes(), &mut buf[3..35]);
    buf[35] = b'-';
    let _ = const_hex::encode_to_slice(sc.span_id().to_bytes(), &mut buf[36..52]);
    buf[52] = b'-';
    let flags = (sc.trace_flags() & TraceFlags::SAMPLED).to_u8();
    let _ = const_hex::encode_to_slice([flags], &mut buf[53..55]);
    // Hex digits and dashes are ASCII.
    String::from_utf8(buf.to_vec()).unwrap_or_default()
}

/// Whether hex digits (already validated) include an upper-case letter, which
/// W3C forbids. Among hex digits only `A`..=`F` have bit 6 set and bit 5 clear.
/// Written without early exit so it compiles to a few vector instructions.
fn has_upper_case(hex_digits: &[u8]) -> bool {
    hex_digits
        .iter()
        .fold(false, |found, &b| found | (b & 0x60 == 0x40))
}

/// The ids and flags of a canonical version-00 `traceparent`, or `None` when
/// the header is in any other form (the SDK then decides).
fn decode_canonical(header: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let b = header.as_bytes();
    if b.len() != CANONICAL_LEN || &b[..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (trace_hex, span_hex, flags_hex) = (&b[3..35], &b[36..52], &b[53..55]);
    let trace: [u8; 16] = const_hex::decode_to_array(trace_hex).ok()?;
    let span: [u8; 8] = const_hex::decode_to_array(span_hex).ok()?;
    let [flags]: [u8; 1] = const_hex::decode_to_array(flags_hex).ok()?;
    if has_upper_case(trace_hex) | has_upper_case(span_hex) | has_upper_case(flags_hex) {
        return None;
    }
    Some((
        TraceId::from_bytes(trace),
        SpanId::from_bytes(span),
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            injector.set(TRACEPARENT, encode(sc));
            injector.set(TRACESTATE, sc.trace_state().header());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some((trace_id, span_id, flags)) =
            extractor.get(TRACEPARENT).and_then(decode_canonical)
        else {
            return TraceContextPropagator::new().extract_with_context(cx, extractor);
        };
        let state = match extractor.get(TRACESTATE) {
            Some(s) => TraceState::from_str(s).unwrap_or_default(),
            None => TraceState::default(),
        };
        let sc = SpanContext::new(trace_id, span_id, flags, true, state);
        if sc.is_valid() {
            cx.with_remote_span_context(sc)
        } else {
            cx.clone()
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(fields_storage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_only() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (t, s, f) = decode_canonical(ok).unwrap();
        assert_eq!(t, TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736));
        assert_eq!(s, SpanId::from(0x00f0_67aa_0ba9_02b7));
        assert_eq!(f, TraceFlags::SAMPLED);
        for other in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        ] {
            assert_eq!(decode_canonical(other), None, "{other}");
        }
    }
}
