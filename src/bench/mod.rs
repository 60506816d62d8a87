//! Benchmark scenarios, shared by `skyrun bench` and the criterion benches:
//! message throughput through the RunEngine (`null`), set+wait on a
//! zero-delay motor (`set`), `count` events delivered to a subscriber, and
//! one group set+wait across many motor actors (`many`) — plus the physical
//! limits they are compared with: an actix request/response round trip, a
//! crossbeam channel hop, and the memory of bare actix actors.
//!
//! ```
//! use skyrun::bench::{run_case, Case, Scenario};
//! let r = run_case(&Case { scenario: Scenario::Null, trace: false, devices: 1, messages: 1000, ..Case::default() });
//! assert_eq!(r.messages, 1000);
//! assert!(r.per_second > 0.0);
//! ```

mod limits;
mod line;
pub mod plan;
mod tracing;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use skyrun_actors::sim::{SynAxis, SynGauss};
use skyrun_actors::{DeviceHandle, SpanTracer};

use crate::plan_stubs as bps;
use crate::{plans, Document, Msg, Plan, RunEngine};

pub use limits::peak_rss_bytes;
pub use line::{BenchLine, Devices};
pub use tracing::SpanProcessorKind;

/// What a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `null` messages through the RunEngine.
    Null,
    /// set + wait on a zero-delay simulated motor.
    Set,
    /// `count(det)` events delivered to a subscriber.
    Count,
    /// One group set + wait across `devices` motors; `messages` counts the sets.
    Many,
    /// `devices` idle motor actors, each asked its position once: memory.
    Idle,
    /// Request/response round trips to one bare actix actor.
    LimitActixRoundtrip,
    /// Messages through one crossbeam channel, thread to thread.
    LimitCrossbeam,
    /// `devices` bare actix actors: memory.
    LimitActixActors,
}

impl Scenario {
    /// The scenario's name, as `--scenario` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Null => "null",
            Scenario::Set => "set",
            Scenario::Count => "count",
            Scenario::Many => "many",
            Scenario::Idle => "idle",
            Scenario::LimitActixRoundtrip => "limit-actix-roundtrip",
            Scenario::LimitCrossbeam => "limit-crossbeam",
            Scenario::LimitActixActors => "limit-actix-actors",
        }
    }

    /// Every scenario.
    pub const ALL: [Scenario; 8] = [
        Scenario::Null,
        Scenario::Set,
        Scenario::Count,
        Scenario::Many,
        Scenario::Idle,
        Scenario::LimitActixRoundtrip,
        Scenario::LimitCrossbeam,
        Scenario::LimitActixActors,
    ];
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        by_name(s, Scenario::ALL, Scenario::name, "scenario")
    }
}

/// The one of `all` called `s`, or an error naming the `what` and listing the known names.
fn by_name<T: Copy, const N: usize>(
    s: &str,
    all: [T; N],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<T, String> {
    all.into_iter()
        .find(|x| name(*x) == s)
        .ok_or_else(|| format!("unknown {what} '{s}' (known: {})", all.map(name).join(", ")))
}

/// One measured case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// What to measure.
    pub scenario: Scenario,
    /// Record every span and hand it to `span_processor` (by default a batch
    /// processor exporting to a counting exporter).
    pub trace: bool,
    /// Devices (for `many` and `limit-actix-actors`).
    pub devices: usize,
    /// Messages (sets for `many`, events for `count`).
    pub messages: u64,
    /// What ended spans go to, when traced.
    pub span_processor: SpanProcessorKind,
}

impl Default for Case {
    /// 1,000 `null` messages, untraced.
    fn default() -> Self {
        Case {
            scenario: Scenario::Null,
            trace: false,
            devices: 1,
            messages: 1000,
            span_processor: SpanProcessorKind::Batch,
        }
    }
}

/// The result of one case (`skyrun bench --json` prints it as a [`BenchLine`]).
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Scenario name.
    pub scenario: &'static str,
    /// `on` or `off`.
    pub trace: &'static str,
    /// The span processor of a traced case (`batch`, `simple`, `discard`); absent when untraced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_processor: Option<SpanProcessorKind>,
    /// Devices.
    pub devices: usize,
    /// Messages (or sets, or events).
    pub messages: u64,
    /// Wall time of the measured part.
    pub seconds: f64,
    /// `messages / seconds`.
    pub per_second: f64,
    /// Spans the exporter received.
    pub spans_exported: u64,
    /// Spans ended but never exported.
    pub spans_dropped: u64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
}

impl BenchResult {
    /// The case as a line of `skyrun bench --json`.
    pub fn line(&self) -> BenchLine {
        BenchLine {
            trace: Some(self.trace.to_owned()),
            span_processor: self.span_processor.map(|p| p.name().to_owned()),
            devices: Some(Devices::Count(self.devices as u64)),
            messages: Some(self.messages),
            seconds: Some(self.seconds),
            per_second: Some(self.per_second),
            ..BenchLine::new(self.scenario)
        }
        .detail("spans_exported", self.spans_exported)
        .detail("spans_dropped", self.spans_dropped)
        .detail("peak_rss_bytes", self.peak_rss_bytes)
    }
}

/// Runs one case in its own actix system and measures it.
pub fn run_case(case: &Case) -> BenchResult {
    let tracing = case
        .trace
        .then(|| tracing::BenchTracing::new(case.span_processor));
    let (engine_tracer, device_tracer) = match &tracing {
        Some(t) => (t.tracer("bluesky.tracing"), t.tracer("ophyd.status")),
        None => (SpanTracer::disabled(), SpanTracer::disabled()),
    };
    let seconds = match case.scenario {
        Scenario::LimitCrossbeam => limits::crossbeam_hop(case.messages),
        Scenario::LimitActixRoundtrip => {
            actix::System::new().block_on(limits::actix_roundtrip(case.messages))
        }
        Scenario::LimitActixActors => {
            actix::System::new().block_on(limits::bare_actors(case.devices))
        }
        _ => actix::System::new().block_on(engine_case(case, engine_tracer, device_tracer)),
    };
    let (spans_exported, spans_dropped) = tracing.map(|t| t.finish()).unwrap_or((0, 0));
    BenchResult {
        scenario: case.scenario.name(),
        trace: if case.trace { "on" } else { "off" },
        span_processor: case.trace.then_some(case.span_processor),
        devices: case.devices,
        messages: case.messages,
        seconds,
        per_second: case.messages as f64 / seconds,
        spans_exported,
        spans_dropped,
        peak_rss_bytes: peak_rss_bytes(),
    }
}

async fn engine_case(case: &Case, engine_tracer: SpanTracer, device_tracer: SpanTracer) -> f64 {
    let re = RunEngine::builder().tracer(engine_tracer).build();
    let n = case.messages;
    match case.scenario {
        Scenario::Null => {
            timed(
                &re,
                Plan::new("null", move |ctx| async move {
                    for _ in 0..n {
                        ctx.send(Msg::new("null")).await?;
                    }
                    Ok(())
                }),
            )
            .await
        }
        Scenario::Set => {
            let motor = DeviceHandle::builder(SynAxis::new("motor"))
                .tracer(device_tracer)
                .spawn();
            timed(
                &re,
                Plan::new("set", move |ctx| async move {
                    for i in 0..n {
                        bps::abs_set(&ctx, &motor, i as f64, Some("g"), true).await?;
                    }
                    Ok(())
                }),
            )
            .await
        }
        Scenario::Count => {
            let motor = SynAxis::new("motor");
            let det = DeviceHandle::builder(SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0))
                .tracer(device_tracer)
                .spawn();
            let events = Arc::new(AtomicU64::new(0));
            let e = events.clone();
            re.subscribe(move |_, doc| {
                if let Document::Event(_) = doc {
                    e.fetch_add(1, Ordering::Relaxed);
                }
            });
            let secs = timed(&re, plans::count(vec![det], n as usize, 0.0)).await;
            assert_eq!(
                events.load(Ordering::Relaxed),
                n,
                "every event reached the subscriber"
            );
            secs
        }
        Scenario::Many => {
            let motors = spawn_motors(case.devices, &device_tracer);
            let rounds = (n / case.devices.max(1) as u64).max(1);
            timed(
                &re,
                Plan::new("many", move |ctx| async move {
                    for r in 0..rounds {
                        for m in &motors {
                            ctx.send(Msg::set(m, r as f64, Some("G".to_owned())))
                                .await?;
                        }
                        bps::wait_group(&ctx, Some("G")).await?;
                    }
                    Ok(())
                }),
            )
            .await
        }
        Scenario::Idle => {
            let t0 = Instant::now();
            let motors = spawn_motors(case.devices, &device_tracer);
            let cx = opentelemetry::Context::new();
            for m in &motors {
                m.request(skyrun_actors::DeviceOp::Position, &cx)
                    .await
                    .expect("device answers");
            }
            t0.elapsed().as_secs_f64()
        }
        _ => unreachable!("limits are measured elsewhere"),
    }
}

/// Motors `m0` .. `m{n-1}`, each its own actor, recording with `tracer`.
fn spawn_motors(n: usize, tracer: &SpanTracer) -> Vec<DeviceHandle> {
    (0..n)
        .map(|i| {
            DeviceHandle::builder(SynAxis::new(format!("m{i}")))
                .tracer(tracer.clone())
                .spawn()
        })
        .collect()
}

async fn timed(re: &RunEngine, plan: Plan) -> f64 {
    let t0 = Instant::now();
    re.run(plan).await.expect("benchmark plan succeeds");
    t0.elapsed().as_secs_f64()
}
