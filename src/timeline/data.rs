//! What the timeline page is given: the spans in waterfall order (each
//! under its parent, siblings by start time), their depth, actor track and
//! nesting level in it, as compact columns, and the profile table.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::telemetry::chrome::assign_tracks;
use crate::telemetry::profile::{format_duration, ProfileReport};
use crate::telemetry::record::SpanRecord;

/// The waterfall order of `spans`: a depth-first walk from the roots (spans
/// without a parent, or whose parent is not among `spans`), children in
/// start order. Returns `(order, depth)`: `order[row]` is a span index,
/// `depth[span]` its depth (0 for a root). Every span appears exactly once.
///
/// ```
/// use skyrun::telemetry::record::SpanRecord;
/// use skyrun::timeline::waterfall_order;
/// let s = |id: &str, parent: Option<&str>, start| SpanRecord { name: id.into(), trace_id: "t".into(),
///     span_id: id.into(), parent_id: parent.map(Into::into), start_ns: start, end_ns: start + 10,
///     error: None, attributes: Default::default() };
/// let spans = [s("c", Some("a"), 5), s("a", None, 0), s("b", Some("a"), 1), s("d", Some("lost"), 2)];
/// let (order, depth) = waterfall_order(&spans);
/// assert_eq!(order, vec![1, 2, 0, 3]);
/// assert_eq!(depth, vec![1, 0, 1, 0]);
/// ```
pub fn waterfall_order(spans: &[SpanRecord]) -> (Vec<usize>, Vec<usize>) {
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_id.as_deref().and_then(|p| index.get(p)) {
            Some(&p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_ns, i));
    by_start(&mut roots);
    children.iter_mut().for_each(by_start);
    let mut order = Vec::with_capacity(spans.len());
    let mut depth = vec![0; spans.len()];
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    loop {
        while let Some((i, d)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            order.push(i);
            depth[i] = d;
            stack.extend(children[i].iter().rev().map(|&c| (c, d + 1)));
        }
        // Spans in a parent cycle (ids repeated in a hand-edited file) are
        // reachable from no root: show them as roots rather than lose them.
        match seen.iter().position(|s| !s) {
            Some(i) => stack.push((i, 0)),
            None => break,
        }
    }
    (order, depth)
}

/// The page's data: one JSON object, columns indexed by row (waterfall order).
pub(crate) fn page_data(spans: &[SpanRecord], title: &str) -> Value {
    // Whole microseconds, as a spans file (JSON lines) keeps them: the page
    // drawn from a run's spans and the one `skyrun view` draws from its
    // file are the same (order, tracks and positions alike).
    let spans: Vec<SpanRecord> = spans
        .iter()
        .map(|s| SpanRecord {
            start_ns: s.start_ns / 1000 * 1000,
            end_ns: s.end_ns / 1000 * 1000,
            ..s.clone()
        })
        .collect();
    let spans = spans.as_slice();
    let (order, depth) = waterfall_order(spans);
    let tracks = assign_tracks(spans);
    let report = ProfileReport::from_records(spans);
    let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    let name_index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_ns).max().unwrap_or(t0);
    let row_of: HashMap<usize, usize> = order.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let n = order.len();
    let (mut name, mut track, mut level, mut start, mut dur) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut parent, mut dep, mut err, mut id, mut pid, mut attrs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for &i in &order {
        let s = &spans[i];
        name.push(name_index[s.name.as_str()]);
        track.push(tracks.of_span[i]);
        level.push(tracks.level[i]);
        // Microseconds, to a tenth: short numbers, nanosecond detail is noise here.
        start.push(((s.start_ns - t0) as f64 / 100.0).round() / 10.0);
        dur.push((s.end_ns.saturating_sub(s.start_ns) as f64 / 100.0).round() / 10.0);
        let p = s.parent_id.as_deref().and_then(|p| index.get(p));
        parent.push(p.and_then(|p| row_of.get(p)).map_or(-1, |&r| r as i64));
        dep.push(depth[i]);
        err.push(s.error.clone());
        id.push(s.span_id.as_str());
        pid.push(s.parent_id.as_deref().unwrap_or(""));
        // Attributes stay text until a span is inspected: parsing 100,000
        // objects up front would cost the page seconds.
        attrs.push(Value::Object(s.attributes.clone()).to_string());
    }
    let profile: Vec<Value> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                "name": r.name, "count": r.count,
                "total": format_duration(r.total), "mean": format_duration(r.mean),
                "p50": format_duration(r.p50), "p99": format_duration(r.p99),
                "max": format_duration(r.max),
            })
        })
        .collect();
    let traces = {
        let mut t: Vec<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t.len()
    };
    json!({
        "title": title,
        "t0": chrono::DateTime::<chrono::Utc>::from(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t0)
        ).format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        "total_us": t1.saturating_sub(t0) as f64 / 1000.0,
        "traces": traces,
        "names": names,
        "tracks": tracks.names,
        "track_lanes": tracks.lanes,
        "name": name, "track": track, "level": level, "start": start, "dur": dur,
        "parent": parent, "depth": dep, "err": err, "id": id, "pid": pid, "attrs": attrs,
        "profile": profile,
    })
}
