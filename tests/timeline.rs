//! The HTML timeline in a real browser: headless Chromium (Debian's
//! `chromium`, or `$CHROMIUM`) opens the page that `skyrun run --timeline`
//! and `skyrun view` write, with `#selftest`, which makes the page walk every
//! row through its drawing code and write what it drew into the DOM; the
//! test reads it with `--dump-dom`. Also: a screenshot kept under
//! `target/tmp/timeline-<pid>/scan/timeline.png`, and a page of 100,000 spans.

mod process;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use process::*;

use serde_json::Value;
use skyrun::telemetry::record::{read_spans, SpanRecord};

const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

fn chromium() -> PathBuf {
    program(
        "CHROMIUM",
        &["chromium", "chromium-browser"],
        "these tests need headless Chromium: apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)",
    )
}

/// Runs Chromium headless on `url` with `extra` flags, killed (and the test
/// failed) if it takes longer than BROWSER_TIMEOUT.
fn browser(work: &Path, url: &str, extra: &[&str]) -> Output {
    let profile = work.join(format!("profile-{}", extra.join("").len()));
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1500,900",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // The pipes are read as the browser writes, so a large DOM cannot block it.
    Running::spawn(cmd, &format!("chromium on {url}")).wait(BROWSER_TIMEOUT)
}

fn file_url(path: &Path) -> String {
    format!("file://{}", fs::canonicalize(path).unwrap().display())
}

/// The page's self-test report, from the DOM Chromium dumps.
fn selftest(work: &Path, html: &Path) -> Value {
    let out = browser(
        work,
        &format!("{}#selftest", file_url(html)),
        &["--dump-dom"],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    for bad in ["Uncaught", "SyntaxError", "TypeError", "ReferenceError"] {
        assert!(
            !stderr.contains(bad),
            "script error in the console: {stderr}"
        );
    }
    let start = dom
        .find("<pre id=\"selftest\">")
        .unwrap_or_else(|| panic!("no self-test element in the DOM:\n{dom:.2000}"))
        + "<pre id=\"selftest\">".len();
    let end = start + dom[start..].find("</pre>").expect("the element ends");
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert!(
        !text.trim().is_empty(),
        "the self-test wrote nothing (the script did not run to the end); errors box: {}",
        dom.split("<div id=\"errors\"")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(500)
            .collect::<String>()
    );
    let report: Value = serde_json::from_str(&text).expect("the self-test report is JSON");
    assert_eq!(report["errors"], serde_json::json!([]), "script errors");
    report
}

/// Every span is drawn once, as a row under its parent's row (depth one
/// more, inside the parent's block of rows), failed exactly when its
/// status is ERROR, on its actor's track.
fn assert_drawn_and_nested(report: &Value, spans: &[SpanRecord]) {
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(report["spans"], spans.len());
    assert_eq!(rows.len(), spans.len());
    let by_id: HashMap<&str, &SpanRecord> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut seen = HashSet::new();
    // The rows of the ancestors of the current row: in a waterfall, a row's
    // parent is the nearest row above it with a smaller depth.
    let mut ancestors: Vec<(usize, u64)> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        assert!(!row.is_null(), "row {r} was never drawn");
        let id = row["id"].as_str().unwrap();
        assert!(seen.insert(id.to_owned()), "span {id} drawn twice");
        let span = by_id
            .get(id)
            .unwrap_or_else(|| panic!("row {r}: unknown span {id}"));
        assert_eq!(row["name"], span.name.as_str());
        assert_eq!(
            row["failed"],
            span.error.is_some(),
            "row {r} ({})",
            span.name
        );
        assert!(
            row["actor"].as_str().unwrap().starts_with(span.lane()),
            "{row}"
        );
        let (x0, x1) = (row["x0"].as_f64().unwrap(), row["x1"].as_f64().unwrap());
        assert!(x1 >= x0, "row {r}: bar from {x0} to {x1}");
        let depth = row["depth"].as_u64().unwrap();
        while ancestors.last().is_some_and(|&(_, d)| d >= depth) {
            ancestors.pop();
        }
        match span.parent_id.as_deref().filter(|p| by_id.contains_key(p)) {
            None => assert_eq!(depth, 0, "row {r}: a root at depth {depth}"),
            Some(parent) => {
                let p = usize::try_from(row["parent_row"].as_i64().unwrap()).unwrap();
                assert_eq!(
                    rows[p]["id"], parent,
                    "row {r}: parent_row is not its parent"
                );
                assert_eq!(
                    ancestors.last().map(|&(a, _)| a),
                    Some(p),
                    "row {r} ({}) is not drawn under its parent's row {p}",
                    span.name
                );
                assert_eq!(depth, rows[p]["depth"].as_u64().unwrap() + 1);
            }
        }
        ancestors.push((r, depth));
    }
    assert!(report["lanes_drawn"].as_u64().unwrap() > 0);
}

#[test]
fn a_scan_is_drawn_with_every_span_under_its_parent_and_a_screenshot_is_kept() {
    let work = test_dir("scan");
    let (jsonl, html, viewed) = (
        work.join("spans.jsonl"),
        work.join("run.html"),
        work.join("view.html"),
    );
    let out = skyrun(&[
        "run",
        "examples/scan.toml",
        "-q",
        "--trace-all",
        "--trace",
        &format!("jsonl:{}", jsonl.display()),
        "--timeline",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = read_spans(&jsonl).unwrap();
    assert!(spans.len() > 250, "{} spans", spans.len());

    let page = fs::read_to_string(&html).unwrap();
    for external in ["http://", "https://", "<link", " src="] {
        assert!(
            !page.contains(external),
            "the page loads something: {external}"
        );
    }
    let report = selftest(&work, &html);
    assert_drawn_and_nested(&report, &spans);
    let tracks: Vec<&str> = report["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for actor in ["engine", "motor", "det", "det2"] {
        assert!(tracks.contains(&actor), "no lane for {actor}: {tracks:?}");
    }
    assert!(
        report["attributes"].as_u64().unwrap() > 1000,
        "attributes: {}",
        report["attributes"]
    );
    assert!(report["profile_rows"].as_u64().unwrap() >= 10);
    // Zooming to half the run doubles the root's bar.
    let zoom = report["zoom_factor"].as_f64().unwrap();
    assert!((zoom - 2.0).abs() < 0.01, "zoom factor {zoom}");
    // Hovering the second row shows its attributes; clicking pins them.
    let second = &report["rows"][1];
    let hover = report["hover"]["text"].as_str().unwrap();
    assert_eq!(report["hover"]["shown"], true);
    assert!(hover.contains(second["name"].as_str().unwrap()), "{hover}");
    assert!(hover.contains(second["id"].as_str().unwrap()), "{hover}");
    assert!(hover.contains("msg.command"), "the attributes: {hover}");
    assert_eq!(report["pinned"].as_str().unwrap(), hover);

    // `skyrun view` on the same spans draws the same page.
    let out = skyrun(&[
        "view",
        jsonl.to_str().unwrap(),
        "-o",
        viewed.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{} spans", spans.len())));
    let viewed_report = selftest(&work, &viewed);
    assert_drawn_and_nested(&viewed_report, &spans);
    assert_eq!(viewed_report["rows"], report["rows"]);

    // A screenshot, kept as a test artifact.
    let png = work.join("timeline.png");
    let _ = fs::remove_file(&png);
    let out = browser(
        &work,
        &file_url(&html),
        &[&format!("--screenshot={}", png.display())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = fs::read(&png).expect("the screenshot was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 20_000,
        "a {}-byte screenshot is blank",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}

#[test]
fn failed_spans_are_marked() {
    let work = test_dir("failed");
    let plan = work.join("fail.toml");
    let devices = fs::canonicalize("examples/beamline.toml").unwrap();
    fs::write(
        &plan,
        format!(
            "devices = {devices:?}\n\
             [[steps]]\nstub = \"open_run\"\n\
             [[steps]]\nstub = \"mv\"\nmotors = [\"motor\"]\npositions = [1.0]\n\
             [[steps]]\nstub = \"trigger_and_read\"\ndetectors = [\"det2\"]\n\
             [[steps]]\nstub = \"mv\"\nmotors = [\"motor\"]\npositions = [20.0]\n\
             [[steps]]\nstub = \"close_run\"\n"
        ),
    )
    .unwrap();
    let (jsonl, html) = (work.join("spans.jsonl"), work.join("fail.html"));
    let out = skyrun(&[
        "run",
        plan.to_str().unwrap(),
        "-q",
        "--trace",
        &format!("jsonl:{}", jsonl.display()),
        "--timeline",
        html.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = read_spans(&jsonl).unwrap();
    let report = selftest(&work, &html);
    assert_drawn_and_nested(&report, &spans);
    let failed: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["failed"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // The move past the limits fails its status at once, so (as in Bluesky)
    // the failure replaces the set's reply and the plan never waits.
    for name in ["Ophyd Status", "Bluesky RunEngine run"] {
        assert!(
            failed.contains(&name),
            "{name} not marked failed: {failed:?}"
        );
    }
}

/// 100,000 spans: a plan span, a run span, and 49,999 set spans each with
/// its device's status span on one of 10 motors.
fn many_spans() -> Vec<SpanRecord> {
    let span =
        |id: u64, parent: Option<u64>, name: &str, start: u64, end: u64, device: Option<String>| {
            let mut attributes = serde_json::Map::new();
            if let Some(d) = device {
                attributes.insert("device_name".into(), d.into());
                attributes.insert("status_type".into(), "MoveStatus".into());
            } else {
                attributes.insert("msg.command".into(), "set".into());
            }
            SpanRecord {
                name: name.into(),
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                span_id: format!("{id:016x}"),
                parent_id: parent.map(|p| format!("{p:016x}")),
                start_ns: 1_800_000_000_000_000_000 + start,
                end_ns: 1_800_000_000_000_000_000 + end,
                error: (id % 10_007 == 0).then(|| "boom".to_owned()),
                attributes,
            }
        };
    let n = 49_999;
    let mut v = vec![
        span(1, None, "plan", 0, 10_000 * (n + 2), None),
        span(
            2,
            Some(1),
            "Bluesky RunEngine run",
            1,
            10_000 * (n + 1),
            None,
        ),
    ];
    for i in 0..n {
        let t = 10_000 * (i + 1);
        v.push(span(
            3 + 2 * i,
            Some(2),
            "Bluesky RunEngine set",
            t,
            t + 2_000,
            None,
        ));
        v.push(span(
            4 + 2 * i,
            Some(3 + 2 * i),
            "Ophyd Status",
            t + 500,
            t + 9_000,
            Some(format!("m{}", i % 10)),
        ));
    }
    v
}

#[test]
fn a_hundred_thousand_spans_open_and_every_row_is_drawn() {
    let work = test_dir("many");
    let spans = many_spans();
    assert_eq!(spans.len(), 100_000);
    let html = work.join("many.html");
    skyrun::timeline::write_html(&html, &spans, "100,000 spans").unwrap();
    // Opened as a user opens it: the page says how long it took (reported,
    // never asserted: tests do not assert timings).
    let out = browser(&work, &file_url(&html), &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let opened = dom
        .split("data-opened-ms=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page drew itself and said when");
    eprintln!(
        "100,000 spans: {} MB of HTML, opened and drawn in {opened} ms",
        fs::metadata(&html).unwrap().len() / 1_000_000
    );
    let report = selftest(&work, &html);
    assert_drawn_and_nested(&report, &spans);
    assert_eq!(report["tracks"].as_array().unwrap().len(), 1 + 10);
}

#[test]
fn view_names_the_line_that_is_not_a_span_and_writes_nothing() {
    let work = test_dir("bad-input");
    let bad = work.join("bad.jsonl");
    fs::write(&bad, "\n{\"name\": \"x\"}\n").unwrap();
    let html = work.join("bad.html");
    let out = skyrun(&["view", bad.to_str().unwrap(), "-o", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: not a span: 'context.trace_id'",
            bad.display()
        )),
        "{err}"
    );
    assert!(!html.exists());

    let empty = work.join("empty.jsonl");
    fs::write(&empty, "").unwrap();
    let out = skyrun(&[
        "view",
        empty.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no spans"));

    let out = skyrun(&[
        "view",
        "/nonexistent-dir/s.jsonl",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read spans file /nonexistent-dir/s.jsonl"));

    let out = skyrun(&[
        "run",
        "examples/count.toml",
        "-q",
        "--timeline",
        "/nonexistent-dir/t.html",
    ]);
    assert_eq!(out.status.code(), Some(2), "refused before running");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot create the timeline /nonexistent-dir/t.html"));
}

#[test]
fn view_reads_console_output_too() {
    let work = test_dir("console");
    let out = skyrun(&["run", "examples/count.toml", "-q", "--trace", "console"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let printed = text.matches("\"span_id\"").count();
    assert!(printed > 10, "{text:.500}");
    let console = work.join("console.txt");
    fs::write(&console, &text).unwrap();
    let html = work.join("console.html");
    let out = skyrun(&[
        "view",
        console.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("timeline: {printed} spans")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let spans = skyrun::telemetry::record::read_spans(&console).unwrap();
    assert_eq!(spans.len(), printed);
    assert_eq!(
        spans.iter().filter(|s| s.parent_id.is_none()).count(),
        1,
        "one trace under the plan span"
    );
}
