//! Where a run spent its time, computed from its spans.
//!
//! [`ProfileProcessor`] is an OpenTelemetry [`SpanProcessor`] that records the
//! name and duration of every span that ends (one hash lookup and a push under
//! a mutex; nothing is exported). Add it to any `SdkTracerProvider`, alone or
//! next to exporting processors; afterwards [`ProfileProcessor::report`] gives
//! a [`ProfileReport`]: per span name the count, total, mean, p50, p99 and max
//! duration, sorted by total time, printable as a table.
//!
//! ```
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use skyrun::telemetry::profile::ProfileProcessor;
//!
//! let profile = ProfileProcessor::new();
//! let provider = SdkTracerProvider::builder().with_span_processor(profile.clone()).build();
//! let tracer = provider.tracer("demo");
//! for _ in 0..3 {
//!     tracer.start("step").end();
//! }
//! let report = profile.report();
//! assert_eq!(report.rows[0].name, "step");
//! assert_eq!(report.rows[0].count, 3);
//! assert!(report.to_string().starts_with("span"));
//! ```
//!
//! Span times nest: a parent's duration includes its children's, so the
//! totals of different names overlap and do not add up to the wall time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use parking_lot::Mutex;

/// Records the name and duration of every ended span. Clones share the records.
#[derive(Debug, Clone, Default)]
pub struct ProfileProcessor {
    records: Arc<Mutex<HashMap<Cow<'static, str>, Vec<Duration>>>>,
}

impl ProfileProcessor {
    /// An empty profile.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of spans recorded so far.
    pub fn span_count(&self) -> usize {
        self.records.lock().values().map(Vec::len).sum()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        self.records.lock().clear();
    }

    /// Records one span by hand (what [`SpanProcessor::on_end`] does).
    pub fn record(&self, name: impl Into<Cow<'static, str>>, duration: Duration) {
        self.records
            .lock()
            .entry(name.into())
            .or_default()
            .push(duration);
    }

    /// The statistics of the spans recorded so far.
    pub fn report(&self) -> ProfileReport {
        let records = self.records.lock();
        ProfileReport::from_durations(records.iter().map(|(k, v)| (k.as_ref(), v.as_slice())))
    }
}

impl SpanProcessor for ProfileProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let duration = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        self.record(span.name, duration);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The statistics of one span name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    /// The span name.
    pub name: String,
    /// How many spans.
    pub count: usize,
    /// Their summed duration.
    pub total: Duration,
    /// The mean duration.
    pub mean: Duration,
    /// The median (nearest rank).
    pub p50: Duration,
    /// The 99th percentile (nearest rank).
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
}

/// Per span name statistics, sorted by total time (longest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileReport {
    /// One row per span name.
    pub rows: Vec<ProfileRow>,
}

/// The nearest-rank `p`th percentile of sorted `v` (not empty).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl ProfileReport {
    /// Statistics of `(name, durations)` groups; empty groups are skipped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use skyrun::telemetry::profile::ProfileReport;
    /// let ms = Duration::from_millis;
    /// let r = ProfileReport::from_durations([
    ///     ("a", &[ms(1), ms(3)][..]),
    ///     ("b", &[ms(10)][..]),
    /// ]);
    /// assert_eq!(r.rows[0].name, "b");
    /// assert_eq!((r.rows[1].total, r.rows[1].mean, r.rows[1].p50, r.rows[1].max), (ms(4), ms(2), ms(1), ms(3)));
    /// ```
    pub fn from_durations<'a>(groups: impl IntoIterator<Item = (&'a str, &'a [Duration])>) -> Self {
        let mut rows: Vec<ProfileRow> = groups
            .into_iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(name, d)| {
                let mut sorted = d.to_vec();
                sorted.sort_unstable();
                let total: Duration = sorted.iter().sum();
                let count = sorted.len();
                ProfileRow {
                    name: name.to_owned(),
                    count,
                    total,
                    mean: total / u32::try_from(count).unwrap_or(u32::MAX),
                    p50: percentile(&sorted, 50.0),
                    p99: percentile(&sorted, 99.0),
                    max: sorted[count - 1],
                }
            })
            .collect();
        rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
        ProfileReport { rows }
    }

    /// Statistics of span records (a `--trace jsonl:FILE` file read back,
    /// or a [`SpanRecorder`](super::record::SpanRecorder)'s), by name.
    ///
    /// ```
    /// use skyrun::telemetry::{profile::ProfileReport, record::parse_spans};
    /// let line = |id: &str, end: &str| format!(r#"{{"name": "set", "context": {{"trace_id": "0x1", "span_id": "0x{id}"}}, "parent_id": null, "start_time": "2026-01-01T00:00:00.000000Z", "end_time": "2026-01-01T00:00:{end}Z"}}"#);
    /// let spans = parse_spans(&format!("{}\n{}", line("a", "01.000000"), line("b", "03.000000"))).unwrap();
    /// let r = ProfileReport::from_records(&spans);
    /// assert_eq!((r.rows[0].count, r.rows[0].total.as_secs()), (2, 4));
    /// ```
    pub fn from_records(spans: &[super::record::SpanRecord]) -> Self {
        let mut groups: HashMap<&str, Vec<Duration>> = HashMap::new();
        for s in spans {
            groups
                .entry(s.name.as_str())
                .or_default()
                .push(s.duration());
        }
        Self::from_durations(groups.iter().map(|(k, v)| (*k, v.as_slice())))
    }

    /// Whether no span was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The number of spans over all names.
    pub fn span_count(&self) -> usize {
        self.rows.iter().map(|r| r.count).sum()
    }
}

/// A duration in the unit that suits it: `1.234 s`, `12.35 ms`, `456.7 µs`, `789 ns`.
///
/// ```
/// use std::time::Duration;
/// use skyrun::telemetry::profile::format_duration;
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1.500 s");
/// assert_eq!(format_duration(Duration::from_micros(12_345)), "12.35 ms");
/// assert_eq!(format_duration(Duration::from_nanos(456_700)), "456.7 µs");
/// assert_eq!(format_duration(Duration::from_nanos(789)), "789 ns");
/// ```
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000_000 {
        format!("{:.3} s", d.as_secs_f64())
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

impl fmt::Display for ProfileReport {
    /// The table: `span  count  total  mean  p50  p99  max`, one row per name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        writeln!(
            f,
            "{:<width$}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}",
            "span", "count", "total", "mean", "p50", "p99", "max"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<width$}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}",
                r.name,
                r.count,
                format_duration(r.total),
                format_duration(r.mean),
                format_duration(r.p50),
                format_duration(r.p99),
                format_duration(r.max),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 99.0), Duration::from_millis(1));
    }

    #[test]
    fn empty_report_prints_a_header() {
        let r = ProfileProcessor::new().report();
        assert!(r.is_empty());
        assert_eq!(r.to_string().lines().count(), 1);
    }

    #[test]
    fn records_by_name() {
        let p = ProfileProcessor::new();
        p.record("x", Duration::from_millis(2));
        p.record("x", Duration::from_millis(4));
        p.record("y", Duration::from_millis(1));
        assert_eq!(p.span_count(), 3);
        let r = p.report();
        assert_eq!(r.rows[0].name, "x");
        assert_eq!(r.rows[0].mean, Duration::from_millis(3));
        assert_eq!(r.span_count(), 3);
    }
}
