//! The live table of events, after Bluesky's `BestEffortCallback`: a header
//! per run (with its local start date-time), one row per event of the run's
//! first stream, and a closing line with how the run ended.
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
//! plans, the flyer's stream for `fly`). [`EventTable::on_document`] returns
//! the text to print and prints nothing itself, so the caller chooses the
//! stream (and can print it above a progress bar). Nothing here asks whether
//! the output is a terminal: the table is the same in a CI log or `| tee`.

use serde_json::Value;

use crate::{Document, Event, EventDescriptor, ExitStatus, RunStart, RunStop};

/// At most this many data columns by default; the rest are counted in the header.
pub const DEFAULT_MAX_COLUMNS: usize = 10;

struct Column {
    key: String,
    width: usize,
    precision: usize,
}

/// Turns documents into the lines of the live table.
pub struct EventTable {
    max_columns: usize,
    start: Option<RunStart>,
    dims: Vec<String>,
    stream: Option<String>,
    columns: Vec<Column>,
}

impl Default for EventTable {
    fn default() -> Self {
        Self::new()
    }
}

impl EventTable {
    /// A table of at most [`DEFAULT_MAX_COLUMNS`] data columns.
    pub fn new() -> Self {
        Self::with_max_columns(DEFAULT_MAX_COLUMNS)
    }

    /// A table of at most `max_columns` data columns (at least 1).
    pub fn with_max_columns(max_columns: usize) -> Self {
        EventTable {
            max_columns: max_columns.max(1),
            start: None,
            dims: Vec::new(),
            stream: None,
            columns: Vec::new(),
        }
    }

    /// The text `doc` adds to the table (without a final newline), if any.
    pub fn on_document(&mut self, doc: &Document) -> Option<String> {
        match doc {
            Document::Start(s) => Some(self.on_start(s)),
            Document::Descriptor(d) => self.on_descriptor(d),
            Document::Event(e) => self.on_event(e),
            Document::EventPage(p) => {
                let rows: Vec<String> =
                    p.events().iter().filter_map(|e| self.on_event(e)).collect();
                (!rows.is_empty()).then(|| rows.join("\n"))
            }
            Document::Stop(s) => Some(self.on_stop(s)),
            // External assets are not rows of the table.
            _ => None,
        }
    }

    fn on_start(&mut self, s: &RunStart) -> String {
        self.stream = None;
        self.columns.clear();
        self.dims = dimension_fields(s);
        self.start = Some(s.clone());
        format!(
            "\nTransient Scan ID: {}     Time: {}\nPersistent Unique Scan ID: '{}'",
            s.scan_id,
            local_time(s.time, "%Y-%m-%d %H:%M:%S"),
            s.uid
        )
    }

    fn on_descriptor(&mut self, d: &EventDescriptor) -> Option<String> {
        if self.stream.is_some() {
            return None;
        }
        self.stream = Some(d.uid.clone());
        let mut keys: Vec<String> = Vec::new();
        let hinted = self
            .dims
            .iter()
            .chain(d.hints.values().flat_map(|h| h.field_names()));
        for k in hinted {
            if d.data_keys.contains_key(k) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        if keys.is_empty() {
            keys = d.data_keys.keys().cloned().collect();
        }
        let hidden = keys.len().saturating_sub(self.max_columns);
        keys.truncate(self.max_columns);
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
        let mut header = format!("| {:>9} | {:>12} |", "seq_num", "time");
        for c in &self.columns {
            header.push_str(&format!(" {:>w$} |", c.key, w = c.width));
        }
        let rule = self.rule();
        Some(format!("{text}\n{rule}\n{header}\n{rule}"))
    }

    fn rule(&self) -> String {
        let mut s = format!("+{}+{}+", "-".repeat(11), "-".repeat(14));
        for c in &self.columns {
            s.push_str(&"-".repeat(c.width + 2));
            s.push('+');
        }
        s
    }

    fn on_event(&mut self, e: &Event) -> Option<String> {
        if self.stream.as_deref() != Some(e.descriptor.as_str()) {
            return None;
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
        Some(row)
    }

    fn on_stop(&mut self, s: &RunStop) -> String {
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
        if !s.reason.is_empty() || s.exit_status != ExitStatus::Success {
            text.push_str(&format!(" {}", s.exit_status.as_str()));
            if !s.reason.is_empty() {
                text.push_str(&format!(": {}", s.reason));
            }
        }
        self.stream = None;
        text.trim_start().to_owned()
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

/// `t` (seconds since the epoch) in local time, in chrono's `format`.
///
/// ```
/// let s = skyrun::console::table::local_time(0.5, "%Y");
/// assert!(s == "1970" || s == "1969", "{s}");
/// ```
pub fn local_time(t: f64, format: &str) -> String {
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

    #[test]
    fn start_line_is_a_local_date_time_not_an_epoch() {
        let start = RunStart {
            uid: "u".into(),
            time: 1_700_000_000.25,
            scan_id: 7,
            metadata: Default::default(),
        };
        let text = EventTable::new()
            .on_document(&Document::Start(start))
            .unwrap();
        let expected = local_time(1_700_000_000.25, "%Y-%m-%d %H:%M:%S");
        assert!(
            text.contains(&format!("Transient Scan ID: 7     Time: {expected}")),
            "{text}"
        );
        assert!(!text.contains("1700000000"), "{text}");
        assert_eq!(expected.len(), "2023-11-14 22:13:20".len());
    }
}
