//! Benchmarking a user's own plan file (`skyrun bench PLAN.toml`): the plan
//! runs `repeat` times untraced and `repeat` times traced, each run in a
//! fresh actix system with freshly spawned devices (so a seeded device file
//! draws the same latencies and faults in every run).
//!
//! * **untraced**: the wall time of each run (median reported) and the
//!   messages per second.
//! * **traced**: every message recorded as a span (`trace_all_messages`)
//!   through the batch processor as `skyrun run` uses it, plus a profile of
//!   the span durations; from those, per command the count and the p50 / p99
//!   latency (from the plan sending the message to its reply), and the
//!   split of the median run's wall time between waiting on devices (`wait` for statuses,
//!   and the requests to devices: read, set, trigger, stage, ...), the plan's
//!   own `sleep`s, and the engine itself (everything else: stepping the
//!   plan, bookkeeping, documents).
//!
//! The message count is the traced runs' (one span per message); the plan
//! is the same in both modes.
//!
//! ```
//! use skyrun::bench::plan::bench_plan;
//! use skyrun::config::{DeviceSet, PlanFile};
//! let devices = DeviceSet::parse("[[motor]]\nname = 'm'\n[[detector]]\nname = 'd'\nmotor = 'm'\n", "d.toml").unwrap();
//! let plan = PlanFile::parse("[plan]\nname = 'scan'\ndetectors = ['d']\nmotor = 'm'\nstart = 0\nstop = 1\nnum = 5\n", "p.toml").unwrap();
//! let report = bench_plan(&plan, &devices, 2).unwrap();
//! assert_eq!(report.untraced.runs, 2);
//! let set = report.traced.commands.iter().find(|c| c.command == "set").unwrap();
//! assert_eq!(set.count, 2 * 5, "5 moves per run, 2 runs");
//! ```

use std::time::{Duration, Instant};

use serde::Serialize;
use skyrun_actors::SpanTracer;

use crate::config::{ConfigError, DeviceSet, PlanFile};
use crate::telemetry::profile::{ProfileProcessor, ProfileRow};
use crate::telemetry::spans::RUN_SPAN;
use crate::{RunEngine, RunError};

use super::line::{BenchLine, Devices};
use super::tracing::BenchTracing;
use super::SpanProcessorKind;

/// The prefix of an engine message span's name.
const MSG_SPAN: &str = "Bluesky RunEngine ";

/// Commands that ask a device and wait for its reply (the rest of a
/// message's time is the engine's).
const DEVICE_COMMANDS: &[&str] = &[
    "read",
    "describe",
    "set",
    "trigger",
    "stage",
    "unstage",
    "kickoff",
    "complete",
    "collect",
    "configure",
    "locate",
    "rd",
    "stop",
];

/// One command's statistics over all traced runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandStat {
    /// The message command (`set`, `wait`, ...).
    pub command: String,
    /// Messages over all runs.
    pub count: usize,
    /// Median latency, s.
    pub p50_s: f64,
    /// 99th percentile latency, s.
    pub p99_s: f64,
    /// Summed latency over all runs, s.
    pub total_s: f64,
}

/// Where the wall time of the median traced run went, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct TimeSplit {
    /// The engine itself: wall time minus everything below.
    pub engine_s: f64,
    /// In `wait` messages: waiting for device statuses.
    pub waiting_on_statuses_s: f64,
    /// In messages that ask a device (read, set, trigger, stage, ...), until its reply.
    pub device_requests_s: f64,
    /// In the plan's `sleep` messages.
    pub sleeping_s: f64,
}

/// The measurements of one mode (untraced or traced).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeResult {
    /// `off` or `on`.
    pub trace: &'static str,
    /// Runs of the plan.
    pub runs: usize,
    /// Messages per run.
    pub messages: u64,
    /// Median wall time of a run, s.
    pub wall_s: f64,
    /// Every run's wall time, s, in run order.
    pub walls_s: Vec<f64>,
    /// `messages / wall_s`.
    pub per_second: f64,
    /// Runs that failed, and the first reason.
    pub failed_runs: usize,
    /// Why the first failed run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Per command statistics (traced only), longest total first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandStat>,
    /// Where the time went (traced only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<TimeSplit>,
}

impl ModeResult {
    /// The mode as a line of `skyrun bench --json`: `plan` is the plan's
    /// name, `devices` its device file. `wall_s` is `seconds`, kept under
    /// the name the plan lines had before the common schema.
    pub fn line(&self, plan: &str, devices: &str) -> BenchLine {
        let mut line = BenchLine {
            plan: Some(plan.to_owned()),
            trace: Some(self.trace.to_owned()),
            devices: Some(Devices::File(devices.to_owned())),
            messages: Some(self.messages),
            seconds: Some(self.wall_s),
            per_second: Some(self.per_second),
            ..BenchLine::new("plan")
        }
        .detail("runs", self.runs)
        .detail("wall_s", self.wall_s)
        .detail("walls_s", &self.walls_s)
        .detail("failed_runs", self.failed_runs);
        if let Some(f) = &self.failure {
            line = line.detail("failure", f);
        }
        if !self.commands.is_empty() {
            line = line.detail("commands", &self.commands);
        }
        if let Some(split) = &self.split {
            line = line.detail("split", split);
        }
        line
    }
}

/// `skyrun bench PLAN.toml`'s result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanBench {
    /// The plan's name.
    pub plan: String,
    /// Runs without tracing.
    pub untraced: ModeResult,
    /// Runs with every message traced.
    pub traced: ModeResult,
}

/// What one run gave.
struct OneRun {
    wall: Duration,
    failure: Option<String>,
}

/// Runs `plan` against `devices` once in a fresh actix system.
fn run_once(
    plan: &PlanFile,
    devices: &DeviceSet,
    tracing: Option<&BenchTracing>,
) -> Result<OneRun, ConfigError> {
    let (engine_tracer, device_tracer) = match tracing {
        Some(t) => (t.tracer("bluesky.tracing"), t.tracer("ophyd.status")),
        None => (SpanTracer::disabled(), SpanTracer::disabled()),
    };
    actix::System::new().block_on(async move {
        let spawned = devices.spawn(device_tracer);
        let built = plan.build(devices, &spawned)?;
        let mut builder = RunEngine::builder()
            .tracer(engine_tracer)
            .trace_all_messages(tracing.is_some());
        for (k, v) in built.run_metadata {
            builder = builder.metadata(k, v);
        }
        let re = builder.build();
        let t0 = Instant::now();
        let result = re.run(built.plan).await;
        let wall = t0.elapsed();
        let failure = match result {
            Ok(_) => None,
            Err(RunError::Failed { error, .. }) => Some(error.to_string()),
            Err(e) => Some(e.to_string()),
        };
        Ok(OneRun { wall, failure })
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

fn mode(trace: &'static str, runs: &[OneRun], messages: u64) -> ModeResult {
    let walls: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
    let wall = median(&walls);
    ModeResult {
        trace,
        runs: runs.len(),
        messages,
        wall_s: wall,
        walls_s: walls,
        per_second: messages as f64 / wall,
        failed_runs: runs.iter().filter(|r| r.failure.is_some()).count(),
        failure: runs.iter().find_map(|r| r.failure.clone()),
        commands: Vec::new(),
        split: None,
    }
}

/// The command of an engine message span's name (`None`: the run span,
/// device spans, plan spans).
fn message_command(span_name: &str) -> Option<&str> {
    if span_name == RUN_SPAN {
        return None; // the whole run, not one message
    }
    span_name.strip_prefix(MSG_SPAN)
}

/// The time in waits, device requests and sleeps of the spans in `report`
/// (`engine_s` left 0).
fn split_of(report: &crate::telemetry::profile::ProfileReport) -> TimeSplit {
    let mut split = TimeSplit::default();
    for row in &report.rows {
        let t = row.total.as_secs_f64();
        match message_command(&row.name) {
            Some("wait") => split.waiting_on_statuses_s += t,
            Some("sleep") => split.sleeping_s += t,
            Some(c) if DEVICE_COMMANDS.contains(&c) => split.device_requests_s += t,
            _ => {}
        }
    }
    split
}

fn stat(row: &ProfileRow, command: &str) -> CommandStat {
    CommandStat {
        command: command.to_owned(),
        count: row.count,
        p50_s: row.p50.as_secs_f64(),
        p99_s: row.p99.as_secs_f64(),
        total_s: row.total.as_secs_f64(),
    }
}

/// Benchmarks `plan` on `devices`: `repeat` runs untraced, then `repeat` traced.
/// A plan file that does not build against the devices is an error; a run
/// that fails is counted in the result (`failed_runs`, `failure`).
pub fn bench_plan(
    plan: &PlanFile,
    devices: &DeviceSet,
    repeat: usize,
) -> Result<PlanBench, ConfigError> {
    let repeat = repeat.max(1);
    let summary = plan.check(devices)?;
    let untraced: Vec<OneRun> = (0..repeat)
        .map(|_| run_once(plan, devices, None))
        .collect::<Result<_, _>>()?;
    let profile = ProfileProcessor::new();
    let tracing = BenchTracing::with_profile(SpanProcessorKind::Batch, profile.clone());
    let mut traced = Vec::with_capacity(repeat);
    let mut splits = Vec::with_capacity(repeat);
    let mut before = TimeSplit::default();
    for _ in 0..repeat {
        let run = run_once(plan, devices, Some(&tracing))?;
        // Engine spans end on the engine thread before the run returns, so
        // the profile now holds all of this run's message spans.
        let now = split_of(&profile.report());
        splits.push(TimeSplit {
            engine_s: 0.0,
            waiting_on_statuses_s: now.waiting_on_statuses_s - before.waiting_on_statuses_s,
            device_requests_s: now.device_requests_s - before.device_requests_s,
            sleeping_s: now.sleeping_s - before.sleeping_s,
        });
        before = now;
        traced.push(run);
    }
    let _ = tracing.finish();

    let report = profile.report();
    let commands: Vec<CommandStat> = report
        .rows
        .iter()
        .filter_map(|row| message_command(&row.name).map(|c| stat(row, c)))
        .collect();
    let messages = commands.iter().map(|c| c.count as u64).sum::<u64>() / repeat as u64;
    let untraced = mode("off", &untraced, messages);
    let mut traced_mode = mode("on", &traced, messages);
    // The split of the median run (by wall time): outliers of a busy machine stay out.
    let mut order: Vec<usize> = (0..repeat).collect();
    order.sort_by(|&a, &b| traced_mode.walls_s[a].total_cmp(&traced_mode.walls_s[b]));
    let mid = order[repeat / 2];
    let mut split = splits[mid];
    split.engine_s = (traced_mode.walls_s[mid]
        - split.waiting_on_statuses_s
        - split.device_requests_s
        - split.sleeping_s)
        .max(0.0);
    traced_mode.commands = commands;
    traced_mode.split = Some(split);
    Ok(PlanBench {
        plan: summary.plan,
        untraced,
        traced: traced_mode,
    })
}
