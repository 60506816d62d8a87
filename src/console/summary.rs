//! The line that says how a run ended: `success: plan 'scan' finished: 1
//! run, 21 events in 3.2 s`, `fail: reason (...)`, `abort: reason (...)`, or,
//! after the operator chose "stop", `stopped: ... after 37 of 100 points`
//! (a stopped plan's runs close with exit status `success`, as in Bluesky,
//! but it did not do all it was asked to).
//!
//! [`RunCounter`] counts what the runs emitted, as a subscriber.
//!
//! ```
//! use std::time::Duration;
//! use skyrun::console::summary::{RunCounter, RunReport};
//! use skyrun::{ExitStatus, Interrupt, RunSummary};
//! let counter = RunCounter::default();
//! let stopped = Ok(RunSummary { exit_status: ExitStatus::Success, reason: String::new(),
//!     run_uids: vec!["u".into()], interrupted: Some(Interrupt::Stop) });
//! let r = RunReport::new("count", &stopped, &counter, Some(100), Duration::from_secs(2));
//! assert!(r.ok);
//! assert_eq!(r.line, "stopped: plan 'count' was stopped by the operator after 0 of 100 points (0 runs, 0 events in 2.000 s)");
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::telemetry::profile::format_duration;
use crate::{Document, ExitStatus, Interrupt, RunError, RunSummary};

#[derive(Debug, Default)]
struct Counts {
    runs: AtomicU64,
    events: AtomicU64,
    planned: AtomicU64,
}

/// Counts runs and events as documents go by, and the points the runs'
/// start documents announce (`num_points`). Cheap to clone; share one with a
/// subscriber.
#[derive(Debug, Default, Clone)]
pub struct RunCounter(Arc<Counts>);

impl RunCounter {
    /// Counts `doc`.
    pub fn on_document(&self, doc: &Document) {
        match doc {
            Document::Start(s) => {
                self.0.runs.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = s.metadata.get("num_points").and_then(Value::as_u64) {
                    self.0.planned.fetch_add(n, Ordering::Relaxed);
                }
            }
            Document::Event(_) => {
                self.0.events.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Runs started.
    pub fn runs(&self) -> u64 {
        self.0.runs.load(Ordering::Relaxed)
    }

    /// Events emitted.
    pub fn events(&self) -> u64 {
        self.0.events.load(Ordering::Relaxed)
    }

    /// The `num_points` of the runs started so far.
    pub fn planned_points(&self) -> u64 {
        self.0.planned.load(Ordering::Relaxed)
    }
}

/// How a plan ended, in one line, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The plan succeeded (a stop by the operator counts as success, as its exit status says).
    pub ok: bool,
    /// The line to print.
    pub line: String,
}

impl RunReport {
    /// The report of plan `plan` that ended with `outcome` after `elapsed`;
    /// `expected_points` is what the plan was to emit (else what its start
    /// documents announced).
    pub fn new(
        plan: &str,
        outcome: &Result<RunSummary, RunError>,
        counter: &RunCounter,
        expected_points: Option<u64>,
        elapsed: Duration,
    ) -> RunReport {
        let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let events = counter.events();
        let done = format!(
            "{}, {} in {}",
            plural(counter.runs(), "run"),
            plural(events, "event"),
            format_duration(elapsed)
        );
        let (ok, line) = match outcome {
            Ok(s) if s.interrupted == Some(Interrupt::Stop) => {
                let expected = expected_points.unwrap_or_else(|| counter.planned_points());
                let far = if expected > 0 {
                    format!("after {events} of {expected} points")
                } else {
                    format!("after {}", plural(events, "point"))
                };
                (
                    true,
                    format!("stopped: plan '{plan}' was stopped by the operator {far} ({done})"),
                )
            }
            Ok(_) => (true, format!("success: plan '{plan}' finished: {done}")),
            Err(RunError::Failed { error, .. }) => (false, format!("fail: {error} ({done})")),
            Err(RunError::Aborted { summary }) => {
                let status = match (&summary.interrupted, summary.exit_status) {
                    (Some(Interrupt::Halt), _) => "halt",
                    (_, ExitStatus::Abort) => "abort",
                    (_, other) => other.as_str(),
                };
                (false, format!("{status}: {} ({done})", summary.reason))
            }
            Err(e) => (false, format!("fail: {e}")),
        };
        RunReport { ok, line }
    }
}
