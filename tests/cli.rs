//! The `skyrun` binary end to end (Ctrl-C in `cli_ctrl_c.rs`, what it reports in
//! `cli_reports.rs`): every shipped example checks and runs,
//! broken plan and device files fail with `FILE:LINE:COLUMN: what is wrong`
//! and exit status 2, and the documents file round-trips.

mod process;

use std::fs;
use std::path::{Path, PathBuf};

use process::*;

use serde_json::Value;
use skyrun::{Document, ExitStatus};

const EXAMPLES: &[&str] = &["scan", "count", "grid_scan", "fly", "steps"];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example(name: &str) -> String {
    format!("examples/{name}.toml")
}

#[test]
fn every_example_checks() {
    for name in EXAMPLES {
        let out = skyrun(&["check", &example(name)]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            stdout.contains("device file: examples/beamline.toml"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("ok: examples/{name}.toml is valid")),
            "{stdout}"
        );
    }
    // An explicit --devices wins over the plan's `devices` key.
    let out = skyrun(&[
        "check",
        "examples/scan.toml",
        "--devices",
        "examples/beamline.toml",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("points:      21"));
}

/// Runs an example with documents and a profile; returns the documents.
fn run_example(name: &str) -> Vec<(String, Document)> {
    let dir = test_dir(&format!("run-{name}"));
    let docs = dir.join("docs.jsonl");
    let out = skyrun(&[
        "run",
        &example(name),
        "--profile",
        "--documents",
        docs.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("success: plan '{name}' finished")),
        "{stdout}"
    );
    // Not a terminal: no live table or progress bar.
    assert!(!stdout.contains("seq_num"), "{stdout}");
    // The profile, computed from the spans.
    assert!(stdout.contains("profile: "), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("span "))
        .expect("profile header");
    for col in ["count", "total", "mean", "p50", "p99", "max"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(stdout.contains("Bluesky RunEngine run "), "{stdout}");
    read_documents(&docs)
}

/// Parses a documents file: every line is `[name, doc]`, and re-serializing
/// the parsed document gives the same JSON back.
fn read_documents(path: &Path) -> Vec<(String, Document)> {
    let body = fs::read_to_string(path).expect("documents file");
    body.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            let pair = v.as_array().expect("[name, doc]");
            assert_eq!(pair.len(), 2, "{line}");
            let name = pair[0].as_str().expect("a document name").to_owned();
            let doc = Document::from_named(&name, pair[1].clone()).expect("a valid document");
            assert_eq!(doc.name(), name);
            assert_eq!(
                serde_json::to_value(&doc).unwrap(),
                pair[1],
                "round trip of {line}"
            );
            (name, doc)
        })
        .collect()
}

/// One run: start, descriptors before their events, stop last; the events
/// number `expected` and match the stop document's counts.
fn assert_one_run(docs: &[(String, Document)], expected: u64) {
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"start"), "{names:?}");
    assert_eq!(names.last(), Some(&"stop"), "{names:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "start" || **n == "stop")
            .count(),
        2
    );
    let Document::Start(start) = &docs[0].1 else {
        unreachable!()
    };
    let mut descriptors = Vec::new();
    let mut events = 0u64;
    for (_, doc) in &docs[1..docs.len() - 1] {
        match doc {
            Document::Descriptor(d) => {
                assert_eq!(d.run_start, start.uid);
                descriptors.push(d.uid.clone());
            }
            Document::Event(e) => {
                assert!(
                    descriptors.contains(&e.descriptor),
                    "event before its descriptor"
                );
                events += 1;
            }
            // A flyer's collected events come as a page (Bluesky's collect).
            Document::EventPage(p) => {
                assert!(
                    descriptors.contains(&p.descriptor),
                    "event page before its descriptor"
                );
                events += p.seq_num.len() as u64;
            }
            other => panic!("unexpected {}", other.name()),
        }
    }
    assert_eq!(events, expected);
    let Document::Stop(stop) = &docs[docs.len() - 1].1 else {
        unreachable!()
    };
    assert_eq!(stop.run_start, start.uid);
    assert_eq!(stop.exit_status, ExitStatus::Success);
    assert_eq!(stop.num_events.values().sum::<u64>(), expected);
}

#[test]
fn scan_documents_round_trip() {
    let docs = run_example("scan");
    let Document::Start(start) = &docs[0].1 else {
        panic!("no start")
    };
    let num_points = start.metadata["num_points"].as_u64().expect("num_points");
    assert_eq!(num_points, 21);
    assert_eq!(start.metadata["plan_name"], "scan");
    assert_eq!(start.metadata["sample"], "silicon");
    assert_eq!(docs[1].0, "descriptor");
    assert_one_run(&docs, num_points);
    let seq: Vec<u64> = docs
        .iter()
        .filter_map(|(_, d)| match d {
            Document::Event(e) => Some(e.seq_num),
            _ => None,
        })
        .collect();
    assert_eq!(seq, (1..=21).collect::<Vec<_>>());
}

#[test]
fn count_example_runs() {
    let docs = run_example("count");
    assert_one_run(&docs, 10);
}

#[test]
fn grid_scan_example_runs() {
    let docs = run_example("grid_scan");
    assert_one_run(&docs, 25);
    let Document::Start(start) = &docs[0].1 else {
        panic!("no start")
    };
    assert_eq!(start.metadata["shape"], serde_json::json!([5, 5]));
    // Run metadata reaches plans without a metadata argument.
    assert_eq!(start.metadata["sample"], "grid target");
}

#[test]
fn fly_example_runs() {
    let docs = run_example("fly");
    assert_one_run(&docs, 50);
}

#[test]
fn steps_example_runs() {
    let docs = run_example("steps");
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "start").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "event").count(),
        4,
        "{names:?}"
    );
    let Document::Start(first) = &docs[0].1 else {
        panic!("no start")
    };
    assert_eq!(first.metadata["purpose"], "alignment check");
    assert_eq!(first.metadata["operator"], "ada");
}

#[test]
fn quiet_run_prints_nothing() {
    let out = skyrun(&["run", "examples/fly.toml", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}

const DEVICES: &str = r#"[[motor]]
name = "motor"
velocity = 1000.0
limits = [-5.0, 5.0]

[[detector]]
name = "det"
motor = "motor"

[[signal]]
name = "temperature"
value = 20.0
"#;

const SCAN: &str = r#"devices = "devices.toml"

[plan]
name = "scan"
detectors = ["det"]
motor = "motor"
start = -1.0
stop = 1.0
num = 3
"#;

/// Writes `devices` and `plan` to a fresh directory; returns their paths.
fn write_files(test: &str, devices: &str, plan: &str) -> (PathBuf, PathBuf) {
    let dir = test_dir(test);
    let (d, p) = (dir.join("devices.toml"), dir.join("plan.toml"));
    fs::write(&d, devices).unwrap();
    fs::write(&p, plan).unwrap();
    (d, p)
}

#[test]
fn broken_files_name_file_line_and_problem() {
    // (test, device file, plan file, which file is broken, "LINE:COL: message")
    let cases: Vec<(&str, String, String, &str, &str)> = vec![
        ("unknown-device", DEVICES.into(), SCAN.replace("motor = \"motor\"", "motor = \"mtr\""), "plan",
         "6:9: unknown device 'mtr' (did you mean 'motor'? motors: motor)"),
        ("wrong-type", DEVICES.into(), SCAN.replace("num = 3", "num = \"three\""), "plan",
         "9:7: invalid type: string \"three\", expected an integer"),
        ("missing-argument", DEVICES.into(), SCAN.replace("stop = 1.0\n", ""), "plan",
         "3:1: plan 'scan' is missing argument 'stop'"),
        ("unknown-key", DEVICES.into(), SCAN.replace("num = 3", "num = 3\nsteps_per_point = 2"), "plan",
         "10:1: unknown key 'steps_per_point'"),
        ("nan", DEVICES.into(), SCAN.replace("start = -1.0", "start = nan"), "plan",
         "7:9: 'start' of plan 'scan' must be a finite number, got NaN"),
        ("negative-count", DEVICES.into(), SCAN.replace("num = 3", "num = -3"), "plan",
         "9:7: 'num' of plan 'scan' must not be negative, got -3"),
        ("absurd-count", DEVICES.into(), SCAN.replace("num = 3", "num = 1000000000000"), "plan",
         "9:7: 'num' of plan 'scan' is 1000000000000, more than the limit of 10000000"),
        ("wrong-kind", DEVICES.into(), SCAN.replace("[\"det\"]", "[\"temperature\"]"), "plan",
         "5:14: device 'temperature' is a signal, but a detector of plan 'scan' must be a motor or detector"),
        ("duplicate-names", DEVICES.replace("name = \"temperature\"", "name = \"det\""), SCAN.into(), "devices",
         "11:8: duplicate device name 'det' (first declared at line 6)"),
        ("device-unknown-key", DEVICES.replace("velocity", "speed"), SCAN.into(), "devices",
         "3:1: unknown key 'speed'"),
        ("device-nan", DEVICES.replace("1000.0", "inf"), SCAN.into(), "devices",
         "3:12: 'velocity' of [[motor]] must be a finite number, got inf"),
        ("device-unknown-motor", DEVICES.replace("motor = \"motor\"", "motor = \"m1\""), SCAN.into(), "devices",
         "8:9: unknown device 'm1' (known: motor)"),
        ("syntax", DEVICES.into(), SCAN.replace("num = 3", "num = "), "plan", "9:7: "),
    ];
    for (test, devices, plan, broken, want) in cases {
        let (d, p) = write_files(test, &devices, &plan);
        let file = if broken == "plan" { &p } else { &d };
        let want = format!("error: {}:{want}", file.display());
        for cmd in ["check", "run"] {
            let out = skyrun(&[cmd, p.to_str().unwrap()]);
            assert_clean_failure(&out, 2);
            let err = text(&out.stderr);
            assert!(
                err.starts_with(&want),
                "{test} ({cmd}):\n got: {err}\nwant: {want}"
            );
            assert_eq!(
                err.lines().count(),
                1,
                "{test}: one line, no backtrace: {err}"
            );
        }
    }
}

#[test]
fn device_file_must_be_given() {
    let (d, p) = write_files(
        "no-devices",
        DEVICES,
        &SCAN.replace("devices = \"devices.toml\"\n", ""),
    );
    let out = skyrun(&["check", p.to_str().unwrap()]);
    assert_clean_failure(&out, 2);
    assert!(
        text(&out.stderr).contains("no device file: pass --devices FILE"),
        "{}",
        text(&out.stderr)
    );
    let out = skyrun(&[
        "check",
        p.to_str().unwrap(),
        "--devices",
        d.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = skyrun(&["run", "does/not/exist.toml"]);
    assert_clean_failure(&out, 2);
    assert!(text(&out.stderr).starts_with("error: does/not/exist.toml: cannot read the file"));

    let (_, p) = write_files(
        "missing-devices",
        DEVICES,
        &SCAN.replace("devices.toml", "nope.toml"),
    );
    let out = skyrun(&["check", p.to_str().unwrap()]);
    assert_clean_failure(&out, 2);
    assert!(
        text(&out.stderr).contains("nope.toml: cannot read the file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_failing_plan_exits_1_and_records_the_failure() {
    let (_, p) = write_files("fails", DEVICES, &SCAN.replace("stop = 1.0", "stop = 9.0"));
    let docs = p.with_file_name("docs.jsonl");
    let out = skyrun(&[
        "run",
        p.to_str().unwrap(),
        "--documents",
        docs.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, 1);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("fail: "), "{stdout}");
    assert!(stdout.contains("limit"), "{stdout}");
    let docs = read_documents(&docs);
    let Some((_, Document::Stop(stop))) = docs.last() else {
        panic!("no stop document")
    };
    assert_eq!(stop.exit_status, ExitStatus::Fail);
}

#[test]
fn bad_usage_exits_2() {
    let out = skyrun(&["run", "examples/scan.toml", "--trace", "zipkin"]);
    assert_clean_failure(&out, 2);
    assert!(text(&out.stderr).contains(
        "invalid trace target 'zipkin': expected none, console, jsonl:FILE, chrome:FILE or otlp"
    ));
    let out = skyrun(&["frobnicate"]);
    assert_clean_failure(&out, 2);
}

#[test]
fn traceparent_becomes_the_parent_of_the_run() {
    let dir = test_dir("traceparent");
    let spans_path = dir.join("spans.jsonl");
    let target = format!("jsonl:{}", spans_path.display());
    let out = skyrun_env(
        &[
            "run",
            "examples/fly.toml",
            "--profile",
            "--run-trace",
            "--trace-all",
            "--trace",
            &target,
        ],
        &[(
            "TRACEPARENT",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The profile lists every message's span (--trace-all), open_run among them.
    assert!(
        text(&out.stdout).contains("Bluesky RunEngine open_run"),
        "{}",
        text(&out.stdout)
    );
    let spans = read_spans(&spans_path);
    let run = spans
        .iter()
        .find(|s| s.name == "Bluesky RunEngine run")
        .unwrap();
    assert_eq!(run.parent_id.as_deref(), Some("0x00f067aa0ba902b7"));
    assert!(spans
        .iter()
        .all(|s| s.trace_id == "0x4bf92f3577b34da6a3ce929d0e0e4736"));
}

/// One span line of a `--trace jsonl:FILE` file.
struct SpanLine {
    name: String,
    trace_id: String,
    span_id: String,
    parent_id: Option<String>,
    attributes: Value,
}

fn read_spans(path: &Path) -> Vec<SpanLine> {
    fs::read_to_string(path)
        .expect("spans file")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("each line is a JSON span");
            SpanLine {
                name: v["name"].as_str().unwrap().to_owned(),
                trace_id: v["context"]["trace_id"].as_str().unwrap().to_owned(),
                span_id: v["context"]["span_id"].as_str().unwrap().to_owned(),
                parent_id: v["parent_id"].as_str().map(str::to_owned),
                attributes: v["attributes"].clone(),
            }
        })
        .collect()
}

#[test]
fn jsonl_spans_link_status_to_set_to_run() {
    let dir = test_dir("jsonl_spans");
    let spans_path = dir.join("spans.jsonl");
    let target = format!("jsonl:{}", spans_path.display());
    let out = skyrun(&[
        "run",
        "examples/scan.toml",
        "--trace",
        &target,
        "--run-trace",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let spans = read_spans(&spans_path);
    let by_id = |id: &str| spans.iter().find(|s| s.span_id == id);
    let run: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "Bluesky RunEngine run")
        .collect();
    assert_eq!(run.len(), 1);
    let run = run[0];
    assert_eq!(run.parent_id, None);
    assert_eq!(run.attributes["exit_status"], "success");
    assert_eq!(run.attributes["msg.command"], "open_run");
    assert!(
        spans.iter().all(|s| s.trace_id == run.trace_id),
        "--run-trace: one trace"
    );
    let sets: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "Bluesky RunEngine set")
        .collect();
    assert_eq!(sets.len(), 21, "one set per point");
    for set in &sets {
        assert_eq!(set.parent_id.as_deref(), Some(run.span_id.as_str()));
    }
    let moves: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "Ophyd Status" && s.attributes["status_type"] == "MoveStatus")
        .collect();
    assert_eq!(moves.len(), 21);
    for m in moves {
        let parent = by_id(m.parent_id.as_deref().unwrap()).expect("parent exported");
        assert_eq!(parent.name, "Bluesky RunEngine set");
        assert_eq!(m.attributes["device_name"], "motor");
    }
}

#[test]
fn console_trace_keeps_stdout_for_spans() {
    let out = skyrun(&["run", "examples/count.toml", "--trace", "console"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.trim_start().starts_with('{'), "{stdout}");
    assert!(stdout.contains("\"name\": \"Bluesky RunEngine run\""));
    assert!(text(&out.stderr).contains("success: plan"));
}

#[test]
fn bench_prints_one_json_object_per_case() {
    let out = skyrun(&[
        "bench",
        "--scenario",
        "many",
        "--devices",
        "50",
        "--messages",
        "100",
        "--repeat",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "trace off and on");
    for (line, trace) in lines.iter().zip(["off", "on"]) {
        assert_eq!(line["scenario"], "many");
        assert_eq!(line["trace"], trace);
        assert_eq!(line["devices"], 50);
        assert_eq!(line["messages"], 100);
        for key in [
            "seconds",
            "per_second",
            "spans_exported",
            "spans_dropped",
            "peak_rss_bytes",
        ] {
            assert!(line[key].is_number(), "{key} in {line}");
        }
    }
    // With tracing on, 2 rounds of 50 sets: every set, move status and wait is exported.
    assert_eq!(lines[1]["spans_exported"], 2 * (50 * 2 + 1));
    assert_eq!(lines[1]["spans_dropped"], 0);
    let bad = skyrun(&["bench", "--scenario", "warp"]);
    assert_clean_failure(&bad, 2);
    assert!(text(&bad.stderr).contains("unknown scenario 'warp'"));
}

#[test]
fn bench_span_processors_export_or_drop_every_span() {
    let case = |processor: &str| {
        let out = skyrun(&[
            "bench",
            "--scenario",
            "set",
            "--messages",
            "100",
            "--repeat",
            "1",
            "--trace",
            "on",
            "--span-processor",
            processor,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let line: Value = serde_json::from_str(text(&out.stdout).trim()).expect("one JSON line");
        assert_eq!(line["trace"], "on");
        assert_eq!(line["span_processor"], processor);
        (
            line["spans_exported"].clone(),
            line["spans_dropped"].clone(),
        )
    };
    // 100 set+wait: a set, a MoveStatus and a wait span each.
    assert_eq!(case("batch"), (300.into(), 0.into()));
    assert_eq!(case("simple"), (300.into(), 0.into()));
    assert_eq!(case("discard"), (0.into(), 300.into()));
    // Untraced cases carry no processor.
    let off = skyrun(&[
        "bench",
        "--scenario",
        "set",
        "--messages",
        "10",
        "--repeat",
        "1",
        "--trace",
        "off",
        "--json",
    ]);
    let line: Value = serde_json::from_str(text(&off.stdout).trim()).expect("one JSON line");
    assert!(line.get("span_processor").is_none(), "{line}");
    let bad = skyrun(&["bench", "--scenario", "set", "--span-processor", "fast"]);
    assert_clean_failure(&bad, 2);
    assert!(
        text(&bad.stderr).contains(
            "--span-processor: unknown span processor 'fast' (known: batch, simple, discard)"
        ),
        "{}",
        text(&bad.stderr)
    );
}
