//! Live output while a run goes: a table of events as they arrive, after
//! Bluesky's BestEffortCallback, and a progress bar for long plans.
//!
//! ```text
//! Transient Scan ID: 1     Time: 2025-01-01 12:00:00
//! Persistent Unique Scan ID: '3f9c...'
//! New stream: 'primary'
//! +-----------+--------------+------------+------------+
//! |   seq_num |         time |      motor |        det |
//! +-----------+--------------+------------+------------+
//! |         1 | 12:00:00.105 |     -2.000 |      0.135 |
//! ...
//! +-----------+--------------+------------+------------+
//! generator scan ['3f9c0a1b'] (scan num: 1)
//! ```
//!
//! The columns are the hinted fields: the motors of the start document's
//! `hints.dimensions`, then each object's `hints.fields` in the descriptor.
//! Only the first stream of a run is tabulated (`primary` for the standard
//! plans, the flyer's stream for `fly`).

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use skyrun::{Document, Event, EventDescriptor, RunStart, RunStop};

use crate::output::Out;

/// Plans with at least this many points get a progress bar.
const PROGRESS_MIN_POINTS: u64 = 10;
/// At most this many data columns; the rest are counted in the header.
const MAX_COLUMNS: usize = 10;

struct Column {
    key: String,
    width: usize,
    precision: usize,
}

/// The live table and progress bar of `skyrun run`.
pub struct Live {
    out: Out,
    table: bool,
    progress: bool,
    bar: Option<ProgressBar>,
    start: Option<RunStart>,
    dims: Vec<String>,
    stream: Option<String>,
    columns: Vec<Column>,
}

impl Live {
    /// Live output on `out`: the table when `table`, the bar when `progress`.
    pub fn new(out: Out, table: bool, progress: bool) -> Self {
        Live {
            out,
            table,
            progress,
            bar: None,
            start: None,
            dims: Vec::new(),
            stream: None,
            columns: Vec::new(),
        }
    }

    /// Whether it prints anything at all.
    pub fn is_active(&self) -> bool {
        self.table || self.progress
    }

    /// Handles one document.
    pub fn on_document(&mut self, doc: &Document) {
        match doc {
            Document::Start(s) => self.on_start(s),
            Document::Descriptor(d) => self.on_descriptor(d),
            Document::Event(e) => self.on_event(e),
            Document::Stop(s) => self.on_stop(s),
        }
    }

    /// Removes the progress bar if a run left one.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn print(&self, text: &str) {
        if !self.table {
            return;
        }
        match &self.bar {
            Some(bar) => bar.suspend(|| self.out.line(text)),
            None => self.out.line(text),
        }
    }

    fn on_start(&mut self, s: &RunStart) {
        self.finish();
        self.stream = None;
        self.columns.clear();
        self.dims = dimension_fields(s);
        let when = local_time(s.time, "%Y-%m-%d %H:%M:%S");
        self.print(&format!(
            "\nTransient Scan ID: {}     Time: {when}\nPersistent Unique Scan ID: '{}'",
            s.scan_id, s.uid
        ));
        let points = s.metadata.get("num_points").and_then(Value::as_u64);
        if let (true, Some(n)) = (self.progress, points) {
            if n >= PROGRESS_MIN_POINTS {
                let bar = ProgressBar::with_draw_target(Some(n), self.out.draw_target());
                let style = ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                let plan = s.metadata.get("plan_name").and_then(Value::as_str);
                bar.set_prefix(plan.unwrap_or("run").to_owned());
                self.bar = Some(bar);
            }
        }
        self.start = Some(s.clone());
    }

    fn on_descriptor(&mut self, d: &EventDescriptor) {
        if self.stream.is_some() {
            return;
        }
        self.stream = Some(d.uid.clone());
        let mut keys: Vec<String> = Vec::new();
        let hinted = self
            .dims
            .iter()
            .chain(d.hints.values().flat_map(|h| h.fields.iter()));
        for k in hinted {
            if d.data_keys.contains_key(k) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        if keys.is_empty() {
            keys = d.data_keys.keys().cloned().collect();
        }
        let hidden = keys.len().saturating_sub(MAX_COLUMNS);
        keys.truncate(MAX_COLUMNS);
        self.columns = keys
            .into_iter()
            .map(|key| {
                let precision =
                    d.data_keys.get(&key).and_then(|k| k.precision).unwrap_or(3) as usize;
                Column {
                    width: key.chars().count().max(10),
                    key,
                    precision: precision.min(10),
                }
            })
            .collect();
        let mut text = format!("New stream: '{}'", d.name);
        if hidden > 0 {
            text.push_str(&format!(" ({hidden} more fields not shown)"));
        }
        text.push('\n');
        text.push_str(&self.rule());
        text.push('\n');
        let mut header = format!("| {:>9} | {:>12} |", "seq_num", "time");
        for c in &self.columns {
            header.push_str(&format!(" {:>w$} |", c.key, w = c.width));
        }
        text.push_str(&header);
        text.push('\n');
        text.push_str(&self.rule());
        self.print(&text);
    }

    fn rule(&self) -> String {
        let mut s = format!("+{}+{}+", "-".repeat(11), "-".repeat(14));
        for c in &self.columns {
            s.push_str(&"-".repeat(c.width + 2));
            s.push('+');
        }
        s
    }

    fn on_event(&mut self, e: &Event) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if self.stream.as_deref() != Some(e.descriptor.as_str()) {
            return;
        }
        let mut row = format!(
            "| {:>9} | {:>12} |",
            e.seq_num,
            local_time(e.time, "%H:%M:%S%.3f")
        );
        for c in &self.columns {
            let cell = e
                .data
                .get(&c.key)
                .map_or(String::new(), |v| format_value(v, c.precision));
            row.push_str(&format!(" {:>w$} |", truncate(&cell, c.width), w = c.width));
        }
        self.print(&row);
    }

    fn on_stop(&mut self, s: &RunStop) {
        let md = self.start.as_ref().map(|st| &st.metadata);
        let get = |k: &str| {
            md.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let scan_id = self.start.as_ref().map_or(0, |st| st.scan_id);
        let uid8: String = s.run_start.chars().take(8).collect();
        let mut text = String::new();
        if self.stream.is_some() {
            text.push_str(&self.rule());
            text.push('\n');
        }
        text.push_str(&format!(
            "{} {} ['{uid8}'] (scan num: {scan_id})",
            get("plan_type"),
            get("plan_name")
        ));
        if !s.reason.is_empty() || s.exit_status != skyrun::ExitStatus::Success {
            text.push_str(&format!(" {}", s.exit_status.as_str()));
            if !s.reason.is_empty() {
                text.push_str(&format!(": {}", s.reason));
            }
        }
        self.finish();
        self.print(text.trim_start());
        self.stream = None;
    }
}

/// The motor fields the start document's `hints.dimensions` name.
fn dimension_fields(s: &RunStart) -> Vec<String> {
    let dims = s
        .metadata
        .get("hints")
        .and_then(|h| h.get("dimensions"))
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for dim in dims.into_iter().flatten() {
        let fields = dim.get(0).and_then(Value::as_array);
        for f in fields.into_iter().flatten().filter_map(Value::as_str) {
            if f != "time" {
                out.push(f.to_owned());
            }
        }
    }
    out
}

/// `t` (seconds since the epoch) in local time.
fn local_time(t: f64, format: &str) -> String {
    let secs = t.floor();
    let nanos = ((t - secs) * 1e9) as u32;
    match chrono::DateTime::from_timestamp(secs as i64, nanos.min(999_999_999)) {
        Some(dt) => dt.with_timezone(&chrono::Local).format(format).to_string(),
        None => format!("{t:.3}"),
    }
}

fn format_value(v: &Value, precision: usize) -> String {
    match v {
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map_or_else(|| n.to_string(), |x| format!("{x:.precision$}")),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Array(a) => format!("[{} items]", a.len()),
        Value::Object(_) => "{..}".into(),
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_truncation() {
        assert_eq!(format_value(&serde_json::json!(1.23456), 3), "1.235");
        assert_eq!(format_value(&serde_json::json!(7), 3), "7");
        assert_eq!(truncate("abcdefghijkl", 5), "abcd…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
