//! The HTML timeline: a run's spans as one self-contained page (`skyrun run
//! --timeline FILE.html`, `skyrun view SPANS.jsonl -o FILE.html`) that any
//! browser opens without a network or a tracing backend.
//!
//! The page shows
//! * a time axis, with zoom (Ctrl/Alt + wheel around the pointer, drag over
//!   the axis or the actor lanes to zoom to a range, `+`/`-`/`0` keys and
//!   buttons, double-click a span to zoom to it) and pan (Shift + wheel,
//!   arrow keys);
//! * the actor lanes: a track per actor (the engine, each device), its
//!   spans stacked by nesting, drawn at any zoom (spans narrower than a
//!   pixel are merged into the bar before them);
//! * the waterfall: one row per span, nested under its parent (indented),
//!   siblings by start time, virtualised (only the visible rows are drawn,
//!   so 100,000 spans scroll as smoothly as 100);
//! * a colour per span name (the legend is the profile table), failed
//!   spans in red with a ✖;
//! * a span's attributes on hover, pinned in the side panel on click;
//! * the profile table of `--profile` beside it.
//!
//! Everything (data, script, style) is inside the one file; the script and
//! style are `timeline.js` and `timeline.css` next to this module, included
//! at compile time.
//!
//! ```
//! use skyrun::telemetry::record::parse_spans;
//! let spans = parse_spans(r#"{"name": "scan", "context": {"trace_id": "0x1", "span_id": "0xa"}, "parent_id": null, "start_time": "2026-01-01T00:00:00.000000Z", "end_time": "2026-01-01T00:00:01.000000Z", "attributes": {"note": "</script>"}}"#).unwrap();
//! let html = skyrun::timeline::render_html(&spans, "demo");
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(!html.contains("http://") && !html.contains("https://"));
//! // Data cannot close the script element that holds it.
//! assert_eq!(html.matches("</script>").count(), 2);
//! ```

mod data;

use std::path::{Path, PathBuf};

pub use data::waterfall_order;

use crate::telemetry::record::SpanRecord;

const TEMPLATE: &str = include_str!("timeline.html");
const SCRIPT: &str = include_str!("timeline.js");
const STYLE: &str = include_str!("timeline.css");

/// The timeline page of `spans`, titled `title`.
pub fn render_html(spans: &[SpanRecord], title: &str) -> String {
    let data = data::page_data(spans, title).to_string();
    // `<` only occurs inside JSON strings, where `\u003c` means the same:
    // no `</script>` or `<!--` in the data can end its element early.
    let data = data.replace('<', "\\u003c");
    TEMPLATE
        .replace("/*STYLE*/", STYLE)
        .replace("__TITLE__", &escape_html(title))
        .replace("/*SCRIPT*/", SCRIPT)
        .replace("/*DATA*/", &data)
}

/// Writes the timeline page of `spans` to `path`.
pub fn write_html(path: &Path, spans: &[SpanRecord], title: &str) -> Result<(), TimelineError> {
    std::fs::write(path, render_html(spans, title)).map_err(|source| TimelineError {
        path: path.to_owned(),
        source,
    })
}

/// The timeline file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the timeline {}: {source}", path.display())]
pub struct TimelineError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
