//! With `OTEL_PROPAGATORS=jaeger` the context crosses the actor boundary in
//! an `uber-trace-id` header instead of W3C `traceparent`, and the device's
//! Status span is still the child of the engine's set span. (Its own test
//! binary: it installs a global propagator.)

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use skyrun::{plan_stubs as bps, telemetry::trace_plan, Plan, RunEngine};
use skyrun_actors::propagation::propagator_from_list;
use skyrun_actors::{sim::SynAxis, DeviceHandle, SpanTracer, TraceCarrier};

#[test]
fn jaeger_headers_carry_the_context_between_actors() {
    let jaeger = propagator_from_list("jaeger").unwrap();
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0xabcdef_u128),
        SpanId::from(0x1234_u64),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ));
    let carrier = TraceCarrier::inject_with(&jaeger, &cx);
    assert_eq!(
        carrier.get("uber-trace-id"),
        Some("00000000000000000000000000abcdef:0000000000001234:0:1")
    );
    assert_eq!(carrier.get("traceparent"), None);
    let back = carrier.extract_with(&jaeger);
    assert_eq!(
        back.span().span_context().span_id(),
        SpanId::from(0x1234_u64)
    );
    assert_eq!(
        back.span().span_context().trace_id(),
        TraceId::from(0xabcdef_u128)
    );

    opentelemetry::global::set_text_map_propagator(jaeger);
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    actix::System::new().block_on(async {
        let re = RunEngine::builder()
            .tracer(SpanTracer::from_provider(&provider, "bluesky.tracing"))
            .build();
        let m = DeviceHandle::builder(SynAxis::new("m"))
            .tracer(SpanTracer::from_provider(&provider, "ophyd.status"))
            .spawn();
        re.run(trace_plan(
            "demo plan",
            Plan::new(
                "p",
                move |ctx| async move { bps::mv(&ctx, &[(&m, 1.0)]).await },
            ),
        ))
        .await
        .unwrap();
    });
    let spans = exporter.get_finished_spans().unwrap();
    let by_name = |n: &str| spans.iter().find(|s| s.name == n).unwrap();
    let (status, set) = (by_name("Ophyd Status"), by_name("Bluesky RunEngine set"));
    assert_eq!(status.parent_span_id, set.span_context.span_id());
    assert_eq!(status.span_context.trace_id(), set.span_context.trace_id());
}
