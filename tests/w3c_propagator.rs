//! skyrun's W3C propagator against the SDK's: for every span context the same
//! headers go out, and for every header (canonical, odd or garbage) the same
//! context comes back.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use proptest::prelude::*;
use skyrun_actors::W3cTraceContext;

fn inject(p: &dyn TextMapPropagator, cx: &Context) -> HashMap<String, String> {
    let mut h = HashMap::new();
    p.inject_context(cx, &mut h);
    h
}

fn extracted(p: &dyn TextMapPropagator, headers: &HashMap<String, String>) -> Option<SpanContext> {
    let cx = p.extract(headers);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

fn headers(traceparent: &str, tracestate: Option<&str>) -> HashMap<String, String> {
    let mut h = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    if let Some(s) = tracestate {
        h.insert("tracestate".to_owned(), s.to_owned());
    }
    h
}

/// A traceparent that is canonical, or canonical with one byte changed, or anything.
fn traceparent() -> impl Strategy<Value = String> {
    let canonical = (any::<u128>(), any::<u64>(), any::<u8>())
        .prop_map(|(t, s, f)| format!("00-{t:032x}-{s:016x}-{f:02x}"));
    prop_oneof![
        canonical.clone(),
        (canonical, 0usize..55, any::<char>()).prop_map(|(c, i, ch)| {
            let mut chars: Vec<char> = c.chars().collect();
            chars[i] = ch;
            chars.into_iter().collect()
        }),
        "[0-9a-fA-F -]{0,70}",
        ".{0,70}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn injects_what_the_sdk_injects(t in any::<u128>(), s in any::<u64>(), f in any::<u8>(), state in prop::option::of("[a-z]{1,8}=[a-z0-9]{1,8}")) {
        let ts = state.as_deref().map(|s| s.parse::<TraceState>().unwrap()).unwrap_or_default();
        let sc = SpanContext::new(TraceId::from(t), SpanId::from(s), TraceFlags::new(f), false, ts);
        let cx = Context::new().with_remote_span_context(sc);
        prop_assert_eq!(inject(&W3cTraceContext, &cx), inject(&TraceContextPropagator::new(), &cx));
    }

    #[test]
    fn extracts_what_the_sdk_extracts(tp in traceparent(), state in prop::option::of("[a-z]{1,8}=[a-z0-9]{1,8}|.{0,20}")) {
        let h = headers(&tp, state.as_deref());
        prop_assert_eq!(extracted(&W3cTraceContext, &h), extracted(&TraceContextPropagator::new(), &h));
    }
}

#[test]
fn odd_forms_get_the_sdks_answer() {
    for tp in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
        "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-XYZxsf09",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "",
    ] {
        let h = headers(tp, Some("congo=t61rcWkgMzE"));
        assert_eq!(
            extracted(&W3cTraceContext, &h),
            extracted(&TraceContextPropagator::new(), &h),
            "{tp:?}"
        );
    }
    // The canonical form really is decoded (not just agreed on as invalid).
    let sc = extracted(
        &W3cTraceContext,
        &headers(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("a=b"),
        ),
    )
    .expect("valid");
    assert_eq!(
        sc.trace_id(),
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
    );
    assert_eq!(sc.span_id(), SpanId::from(0x00f0_67aa_0ba9_02b7));
    assert!(sc.is_sampled() && sc.is_remote());
    assert_eq!(sc.trace_state().get("a"), Some("b"));
}
