//! The Chrome trace-event format (`--trace chrome:FILE.json`), which
//! Perfetto (ui.perfetto.dev), `chrome://tracing` and speedscope open.
//!
//! One complete (`"ph": "X"`) event per span, with its attributes (and its
//! ids and error, if any) in `args`; a track (`tid`) per actor: `engine`
//! and each device, named by `thread_name` metadata events. A track holds
//! only spans that nest or follow each other, as the format requires, so an
//! actor whose spans overlap without nesting (two statuses of one device in
//! flight at once) gets more tracks (`motor`, `motor #2`). A parent on
//! another track is joined to its child by a flow arrow (`"ph": "s"` on the
//! parent's track, `"ph": "f"` on the child's, both at the child's start).
//! Times are microseconds since the first span started.
//!
//! ```
//! use skyrun::telemetry::chrome::chrome_trace;
//! use skyrun::telemetry::record::SpanRecord;
//! let span = |name: &str, id: &str, parent: Option<&str>, start, end, device: Option<&str>| SpanRecord {
//!     name: name.into(), trace_id: "t".into(), span_id: id.into(),
//!     parent_id: parent.map(Into::into), start_ns: start, end_ns: end, error: None,
//!     attributes: device.map(|d| serde_json::json!({"device_name": d}).as_object().unwrap().clone()).unwrap_or_default(),
//! };
//! let trace = chrome_trace(&[
//!     span("Bluesky RunEngine set", "a", None, 1_000, 9_000, None),
//!     span("Ophyd Status", "b", Some("a"), 2_000, 8_000, Some("motor")),
//! ]);
//! let events = trace["traceEvents"].as_array().unwrap();
//! let x: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
//! assert_eq!((x[0]["ts"].as_f64(), x[0]["dur"].as_f64()), (Some(0.0), Some(8.0)));
//! assert_ne!(x[0]["tid"], x[1]["tid"]);
//! assert_eq!(events.iter().filter(|e| e["ph"] == "s" || e["ph"] == "f").count(), 2);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{json, Map, Value};

use super::jsonl::CreateFileError;
use super::record::SpanRecord;

/// The process id every event carries (one process: the run).
const PID: u64 = 1;

/// Where each span goes: its track (an index into the track names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracks {
    /// The track of each span, in the order the spans were given.
    pub of_span: Vec<usize>,
    /// The nesting level of each span in its track (0 for the outermost).
    pub level: Vec<usize>,
    /// The name of each track: the actor, with `#2`, `#3`... for extra tracks.
    pub names: Vec<String>,
    /// The actor ([`SpanRecord::lane`]) of each track.
    pub lanes: Vec<String>,
}

/// Assigns each span to a track of its actor ([`SpanRecord::lane`]) such
/// that the spans of one track nest or are disjoint. Engine tracks come
/// first, then devices in the order they first appear.
///
/// ```
/// use skyrun::telemetry::{chrome::assign_tracks, record::SpanRecord};
/// let s = |start, end| SpanRecord { name: "x".into(), trace_id: "t".into(), span_id: "s".into(),
///     parent_id: None, start_ns: start, end_ns: end, error: None, attributes: Default::default() };
/// // [0,10] contains [1,2]; [5,20] overlaps [0,10] without nesting.
/// let t = assign_tracks(&[s(0, 10), s(1, 2), s(5, 20)]);
/// assert_eq!(t.of_span, vec![0, 0, 1]);
/// assert_eq!(t.level, vec![0, 1, 0]);
/// assert_eq!(t.names, vec!["engine", "engine #2"]);
/// ```
pub fn assign_tracks(spans: &[SpanRecord]) -> Tracks {
    let mut lanes: Vec<&str> = Vec::new();
    let mut lane_of: HashMap<&str, usize> = HashMap::new();
    if spans.iter().any(|s| s.lane() == "engine") {
        lanes.push("engine");
        lane_of.insert("engine", 0);
    }
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].start_ns, std::cmp::Reverse(spans[i].end_ns)));
    for &i in &order {
        let lane = spans[i].lane();
        if !lane_of.contains_key(lane) {
            lane_of.insert(lane, lanes.len());
            lanes.push(lane);
        }
    }
    // Per lane, its tracks; per track, the stack of open spans' end times.
    let mut tracks: Vec<Vec<usize>> = vec![Vec::new(); lanes.len()];
    let mut stacks: Vec<Vec<u64>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut of_span = vec![0; spans.len()];
    let mut level = vec![0; spans.len()];
    let mut lane_of_track: Vec<usize> = Vec::new();
    for &i in &order {
        let (start, end) = (spans[i].start_ns, spans[i].end_ns);
        let lane = lane_of[spans[i].lane()];
        let mut chosen = None;
        for &t in &tracks[lane] {
            let stack = &mut stacks[t];
            while stack.last().is_some_and(|&e| e <= start) {
                stack.pop();
            }
            if stack.last().is_none_or(|&e| end <= e) {
                chosen = Some(t);
                break;
            }
        }
        let t = chosen.unwrap_or_else(|| {
            let n = tracks[lane].len();
            names.push(match n {
                0 => lanes[lane].to_owned(),
                _ => format!("{} #{}", lanes[lane], n + 1),
            });
            stacks.push(Vec::new());
            lane_of_track.push(lane);
            tracks[lane].push(names.len() - 1);
            names.len() - 1
        });
        level[i] = stacks[t].len();
        stacks[t].push(end);
        of_span[i] = t;
    }
    // Renumber so that the tracks of a lane are adjacent, lanes in order.
    let ordered: Vec<usize> = tracks.into_iter().flatten().collect();
    let mut new_index = vec![0; ordered.len()];
    for (n, &t) in ordered.iter().enumerate() {
        new_index[t] = n;
    }
    Tracks {
        of_span: of_span.into_iter().map(|t| new_index[t]).collect(),
        level,
        names: ordered.iter().map(|&t| names[t].clone()).collect(),
        lanes: ordered
            .iter()
            .map(|&t| lanes[lane_of_track[t]].to_owned())
            .collect(),
    }
}

/// The Chrome trace-event JSON object (`{"traceEvents": [...], ...}`) of `spans`.
pub fn chrome_trace(spans: &[SpanRecord]) -> Value {
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let us = |ns: u64| (ns - t0) as f64 / 1000.0;
    let tracks = assign_tracks(spans);
    let mut events = Vec::with_capacity(spans.len() + tracks.names.len() + 1);
    events.push(json!({
        "ph": "M", "name": "process_name", "pid": PID, "tid": 0,
        "args": {"name": "skyrun run"},
    }));
    for (tid, name) in tracks.names.iter().enumerate() {
        events.push(json!({
            "ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
            "args": {"name": name},
        }));
        events.push(json!({
            "ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid,
            "args": {"sort_index": tid},
        }));
    }
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    for (i, s) in spans.iter().enumerate() {
        let mut args: Map<String, Value> = s.attributes.clone();
        args.insert("span_id".into(), s.span_id.clone().into());
        args.insert("trace_id".into(), s.trace_id.clone().into());
        if let Some(p) = &s.parent_id {
            args.insert("parent_id".into(), p.clone().into());
        }
        if let Some(e) = &s.error {
            args.insert("error".into(), e.clone().into());
        }
        let tid = tracks.of_span[i];
        events.push(json!({
            "ph": "X",
            "name": s.name,
            "cat": if s.error.is_some() { "span,error" } else { "span" },
            "pid": PID,
            "tid": tid,
            "ts": us(s.start_ns),
            "dur": s.end_ns.saturating_sub(s.start_ns) as f64 / 1000.0,
            "args": args,
        }));
        let parent = s.parent_id.as_deref().and_then(|p| index.get(p));
        if let Some(&p) = parent {
            let ptid = tracks.of_span[p];
            if ptid != tid {
                let ts = us(s.start_ns.max(spans[p].start_ns));
                let flow = |ph: &str, tid: usize| {
                    json!({
                        "ph": ph, "id": i, "name": "parent", "cat": "parent",
                        "pid": PID, "tid": tid, "ts": ts, "bp": "e",
                    })
                };
                events.push(flow("s", ptid));
                events.push(flow("f", tid));
            }
        }
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"generator": concat!("skyrun ", env!("CARGO_PKG_VERSION"))},
    })
}

/// Writes the Chrome trace of `spans` to `path`.
pub fn write_chrome_trace(path: &Path, spans: &[SpanRecord]) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    serde_json::to_writer(&mut w, &chrome_trace(spans))?;
    w.write_all(b"\n")?;
    w.flush()
}

/// A [`SpanExporter`] that keeps every span and writes the Chrome trace
/// file when it is shut down (the format is one JSON object, so nothing can
/// be written before the last span). The file is created at once, so a bad
/// path fails before a plan runs.
pub struct ChromeExporter {
    path: PathBuf,
    spans: Mutex<Vec<SpanRecord>>,
    written: Mutex<bool>,
}

impl ChromeExporter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, CreateFileError> {
        File::create(path).map_err(|error| CreateFileError {
            path: path.to_owned(),
            error,
        })?;
        Ok(ChromeExporter {
            path: path.to_owned(),
            spans: Mutex::new(Vec::new()),
            written: Mutex::new(false),
        })
    }

    fn failure(&self, e: impl fmt::Display) -> OTelSdkError {
        OTelSdkError::InternalFailure(format!("writing {}: {e}", self.path.display()))
    }
}

impl fmt::Debug for ChromeExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromeExporter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SpanExporter for ChromeExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut spans = self.spans.lock().map_err(|e| self.failure(e))?;
        spans.extend(batch.iter().map(SpanRecord::from_span_data));
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let mut written = self.written.lock().map_err(|e| self.failure(e))?;
        if *written {
            return Ok(());
        }
        let spans = self.spans.lock().map_err(|e| self.failure(e))?;
        write_chrome_trace(&self.path, &spans).map_err(|e| self.failure(e))?;
        *written = true;
        Ok(())
    }
}
