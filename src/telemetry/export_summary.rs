//! What to tell a person about a finished trace export: where the spans
//! went, the counts, and the first error of each kind (connection refused,
//! timed out, error status, other), once, not per batch.
//!
//! ```
//! use std::time::Duration;
//! use skyrun::telemetry::counting::{ExportFailure, FailureKind};
//! use skyrun::telemetry::export_summary::ExportSummary;
//! use skyrun::telemetry::ExportReport;
//! let s = ExportSummary {
//!     destination: "OTLP http/protobuf to http://127.0.0.1:9/v1/traces".into(),
//!     report: ExportReport { spans_ended: 12, spans_exported: 0, spans_dropped: 12, export_errors: 1 },
//!     failures: vec![ExportFailure { kind: FailureKind::Refused, exports: 1, first: "tcp connect error: Connection refused (os error 111)".into() }],
//!     timed_out: None,
//! };
//! assert!(!s.is_clean());
//! assert_eq!(s.to_string(), "trace export to OTLP http/protobuf to http://127.0.0.1:9/v1/traces: \
//! 12 spans ended, 0 exported, 12 dropped, 1 failed export\n  connection refused: tcp connect error: Connection refused (os error 111)");
//! ```

use std::fmt;
use std::time::Duration;

use super::counting::ExportFailure;
use super::pipeline::ExportReport;

/// A finished export, for a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Where the spans went ([`Telemetry::destination`](super::Telemetry::destination)).
    pub destination: String,
    /// The counts.
    pub report: ExportReport,
    /// The first error of each kind.
    pub failures: Vec<ExportFailure>,
    /// Set when the last exports had not finished at the shutdown deadline
    /// (the collector did not answer in time): the deadline.
    pub timed_out: Option<Duration>,
}

impl ExportSummary {
    /// Every span that ended was exported.
    pub fn is_clean(&self) -> bool {
        self.report.spans_dropped == 0 && self.timed_out.is_none() && self.failures.is_empty()
    }
}

impl fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace export to {}: {}", self.destination, self.report)?;
        for failure in &self.failures {
            write!(f, "\n  {failure}")?;
        }
        if let Some(t) = self.timed_out {
            write!(
                f,
                "\n  timed out: no answer within the shutdown timeout ({} s); the spans still queued were dropped",
                t.as_secs_f64()
            )?;
        }
        Ok(())
    }
}
