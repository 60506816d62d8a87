//! `--trace chrome:FILE.json`: the Chrome trace-event format's structure, as
//! Perfetto and chrome://tracing read it: one `X` event per span (the same
//! spans as `--trace jsonl`), a named track per actor, spans on one track
//! nested or disjoint, flow arrows from parent to child across tracks, the
//! attributes in `args`, failures marked.

use std::collections::{BTreeMap, HashMap};
mod process;

use std::fs;
use std::path::Path;

use process::*;

use serde_json::Value;

fn run_traced(work: &Path, plan: &str, target: &str, code: i32) {
    let out = skyrun(&["run", plan, "-q", "--trace-all", "--trace", target]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = work;
}

#[test]
fn a_scan_becomes_one_x_event_per_span_a_track_per_actor_and_flows_across_tracks() {
    let work = test_dir("scan");
    let chrome = work.join("trace.json");
    let jsonl = work.join("spans.jsonl");
    run_traced(
        &work,
        "examples/scan.toml",
        &format!("chrome:{}", chrome.display()),
        0,
    );
    run_traced(
        &work,
        "examples/scan.toml",
        &format!("jsonl:{}", jsonl.display()),
        0,
    );

    let trace: Value = serde_json::from_str(&fs::read_to_string(&chrome).unwrap()).unwrap();
    assert_eq!(trace["displayTimeUnit"], "ms");
    let events = trace["traceEvents"].as_array().unwrap();
    let x: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();

    // The same spans as the JSON-lines export of the same plan.
    let count = |names: Vec<String>| {
        let mut m = BTreeMap::new();
        for n in names {
            *m.entry(n).or_insert(0) += 1;
        }
        m
    };
    let jsonl_names = fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let x_names = x
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(count(x_names), count(jsonl_names));

    // A named track per actor.
    let tracks: HashMap<u64, &str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    for actor in ["engine", "motor", "det", "det2"] {
        assert!(
            tracks.values().any(|t| *t == actor),
            "no track {actor}: {tracks:?}"
        );
    }
    let by_id: HashMap<&str, &Value> = x
        .iter()
        .map(|e| (e["args"]["span_id"].as_str().unwrap(), *e))
        .collect();
    assert_eq!(by_id.len(), x.len(), "span ids are unique");
    for e in &x {
        let tid = e["tid"].as_u64().unwrap();
        let track = tracks
            .get(&tid)
            .unwrap_or_else(|| panic!("unnamed track {tid}"));
        let actor = match e["name"].as_str().unwrap() {
            "Ophyd Status" => e["args"]["device_name"].as_str().unwrap(),
            _ => "engine",
        };
        assert!(track.starts_with(actor), "{} on track {track}", e["name"]);
        assert!(e["dur"].as_f64().unwrap() >= 0.0 && e["ts"].as_f64().unwrap() >= 0.0);
        assert!(e["args"]["trace_id"].is_string());
    }
    // Attributes in args.
    let status = x
        .iter()
        .find(|e| e["name"] == "Ophyd Status" && e["args"]["status_type"] == "MoveStatus")
        .unwrap();
    assert_eq!(status["args"]["positioner_name"], "motor");
    assert!(status["args"]["target"].is_number());

    // On each track, spans nest or follow each other.
    let mut per_track: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    for e in &x {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        per_track
            .entry(e["tid"].as_u64().unwrap())
            .or_default()
            .push((ts, ts + dur));
    }
    for (tid, mut spans) in per_track {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for (start, end) in spans {
            while open.last().is_some_and(|&e| e <= start) {
                open.pop();
            }
            if let Some(&outer) = open.last() {
                assert!(
                    end <= outer,
                    "track {tid}: [{start}, {end}] overlaps a span ending at {outer}"
                );
            }
            open.push(end);
        }
    }

    // Flow arrows: one s/f pair per child on another track than its parent.
    let flows: HashMap<(u64, &str), &Value> = events
        .iter()
        .filter(|e| e["ph"] == "s" || e["ph"] == "f")
        .map(|e| ((e["id"].as_u64().unwrap(), e["ph"].as_str().unwrap()), e))
        .collect();
    let (mut crossing, mut status_arrows) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        if e["ph"] != "X" {
            continue;
        }
        let Some(parent) = e["args"]["parent_id"].as_str().and_then(|p| by_id.get(p)) else {
            continue;
        };
        if parent["tid"] == e["tid"] {
            continue;
        }
        crossing += 1;
        if e["name"] == "Ophyd Status" {
            status_arrows += 1;
        }
        // The flow id is the span's index among the X events.
        let n = x.iter().position(|o| std::ptr::eq(*o, e)).unwrap() as u64;
        let _ = i;
        let s = flows
            .get(&(n, "s"))
            .unwrap_or_else(|| panic!("no flow start for {}", e["name"]));
        let f = flows.get(&(n, "f")).unwrap();
        assert_eq!(s["tid"], parent["tid"]);
        assert_eq!(f["tid"], e["tid"]);
        assert_eq!(f["bp"], "e");
        let ts = s["ts"].as_f64().unwrap();
        let (p0, p1) = (
            parent["ts"].as_f64().unwrap(),
            parent["ts"].as_f64().unwrap() + parent["dur"].as_f64().unwrap(),
        );
        assert!(
            p0 <= ts && ts <= p1 + 0.001,
            "the arrow leaves its parent: {ts} outside [{p0}, {p1}]"
        );
    }
    // Every Ophyd Status hangs off an engine span by an arrow: 84 of them, per
    // point the move, the two detectors' triggers and the motor's (motors
    // are triggerable, as in ophyd);
    // others cross between the engine's own tracks (the run span starts
    // inside the open_run span and outlives it, so it needs a track of its own).
    assert_eq!(status_arrows, 84);
    assert_eq!(flows.len(), 2 * crossing);
}

#[test]
fn failures_are_marked_and_a_bad_path_is_refused_before_running() {
    let work = test_dir("fail");
    let plan = work.join("fail.toml");
    let devices = fs::canonicalize("examples/beamline.toml").unwrap();
    fs::write(
        &plan,
        format!(
            "devices = {devices:?}\n[[steps]]\nstub = \"mv\"\nmotors = [\"motor\"]\npositions = [20.0]\n"
        ),
    )
    .unwrap();
    let chrome = work.join("trace.json");
    run_traced(
        &work,
        plan.to_str().unwrap(),
        &format!("chrome:{}", chrome.display()),
        1,
    );
    let trace: Value = serde_json::from_str(&fs::read_to_string(&chrome).unwrap()).unwrap();
    let failed: Vec<&Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "span,error")
        .collect();
    assert!(failed.iter().any(|e| e["name"] == "Ophyd Status"
        && e["args"]["error"]
            .as_str()
            .unwrap()
            .contains("outside the limits")));

    let out = skyrun(&[
        "run",
        "examples/scan.toml",
        "--trace",
        "chrome:/nonexistent-dir/t.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-dir/t.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
