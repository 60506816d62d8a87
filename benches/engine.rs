//! Criterion benchmarks: the `skyrun bench` scenarios (null, set, count, many,
//! traced and not) and the hot pieces on their path (Status completion,
//! traced and not; span context inject/extract). `cargo bench` runs them
//! all; BENCHMARKS.md has the figures.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use skyrun::bench::{run_case, Case, Scenario};
use skyrun_actors::{SpanTracer, Status, TraceCarrier, W3cTraceContext};

// The allocator of the `skyrun` binary, so figures match `skyrun bench`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn scenarios(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.measurement_time(Duration::from_secs(3)).sample_size(10);
    for (scenario, devices) in [
        (Scenario::Null, 1),
        (Scenario::Set, 1),
        (Scenario::Count, 1),
        (Scenario::Many, 1000),
        (Scenario::LimitActixRoundtrip, 1),
    ] {
        for trace in [false, true] {
            if trace && scenario == Scenario::LimitActixRoundtrip {
                continue;
            }
            g.throughput(Throughput::Elements(1));
            let id = BenchmarkId::new(
                scenario.name(),
                if trace { "trace-on" } else { "trace-off" },
            );
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let messages = iters.max(devices as u64);
                    let r = run_case(&Case {
                        scenario,
                        trace,
                        devices,
                        messages,
                        ..Case::default()
                    });
                    // Report per message, for the iterations criterion asked for.
                    Duration::from_secs_f64(r.seconds * iters as f64 / messages as f64)
                })
            });
        }
    }
    g.finish();
}

fn hot_pieces(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot");
    g.bench_function("status_complete_untraced", |b| {
        b.iter(|| {
            let s = Status::builder().build();
            s.set_finished();
            s.result()
        })
    });
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x0123_4567_89ab_cdef_u128),
        SpanId::from(0x42),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ));
    // A traced status: its span built at completion and ended, under a
    // provider without processors (so no export cost is measured).
    let provider = SdkTracerProvider::builder().build();
    let tracer = SpanTracer::from_provider(&provider, "ophyd.status");
    g.bench_function("status_complete_traced", |b| {
        b.iter(|| {
            let s = Status::builder()
                .device("m", "SynAxis")
                .traced(&tracer, &cx)
                .build();
            s.set_finished();
            s.result()
        })
    });
    // skyrun's W3C propagator next to the SDK's, on the same context.
    let sdk = TraceContextPropagator::new();
    let props: [(&str, &dyn TextMapPropagator); 2] = [("skyrun", &W3cTraceContext), ("sdk", &sdk)];
    for (name, prop) in props {
        g.bench_function(BenchmarkId::new("context_inject", name), |b| {
            b.iter(|| TraceCarrier::inject_with(prop, &cx))
        });
        let carrier = TraceCarrier::inject_with(prop, &cx);
        g.bench_function(BenchmarkId::new("context_extract", name), |b| {
            b.iter(|| carrier.extract_with(prop))
        });
    }
    g.finish();
}

criterion_group!(benches, scenarios, hot_pieces);
criterion_main!(benches);
