//! One plan, one trace, by default in `skyrun run`: a span named after the
//! plan is the root, the run span its child parents the run's spans, and
//! what the plan does outside the run (stage, unstage, open_run) hangs off
//! the plan span. `--bluesky-parents` keeps Bluesky's layout (106 traces
//! for a 21-point scan of two detectors); a TRACEPARENT still parents it
//! all; `--trace console` on a terminal prints the spans after the live
//! table, never inside it.

mod process;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use process::*;
use serde_json::Value;

/// Runs `plan` with `flags`, spans to a JSON-lines file, and reads them back.
fn spans_of(name: &str, plan: &str, flags: &[&str], env: &[(&str, &str)], code: i32) -> Vec<Value> {
    let path = test_dir(name).join("spans.jsonl");
    let target = format!("jsonl:{}", path.display());
    let mut args = vec!["run", plan, "-q", "--trace", &target];
    args.extend_from_slice(flags);
    let out = skyrun_env(&args, env);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn id(s: &Value) -> &str {
    s["context"]["span_id"].as_str().unwrap()
}

fn traces(spans: &[Value]) -> usize {
    spans
        .iter()
        .map(|s| s["context"]["trace_id"].as_str().unwrap())
        .collect::<HashSet<_>>()
        .len()
}

/// The names of the span's ancestors, nearest first.
fn ancestors<'a>(s: &'a Value, by_id: &HashMap<&str, &'a Value>) -> Vec<&'a str> {
    let mut names = Vec::new();
    let mut cur = s;
    while let Some(p) = cur["parent_id"].as_str().and_then(|p| by_id.get(p)) {
        names.push(p["name"].as_str().unwrap());
        cur = p;
        assert!(names.len() < 100, "a parent cycle");
    }
    names
}

#[test]
fn by_default_every_span_of_a_scan_is_in_one_trace_under_the_plan_span() {
    let spans = spans_of("default", "examples/scan.toml", &["--trace-all"], &[], 0);
    assert_eq!(traces(&spans), 1, "one plan, one trace");
    let by_id: HashMap<&str, &Value> = spans.iter().map(|s| (id(s), s)).collect();
    let roots: Vec<&Value> = spans.iter().filter(|s| s["parent_id"].is_null()).collect();
    assert_eq!(roots.len(), 1);
    let plan = roots[0];
    assert_eq!(plan["name"], "scan", "the root is named after the plan");
    assert_eq!(plan["attributes"]["plan_file"], "examples/scan.toml");
    assert_eq!(plan["attributes"]["exit_status"], "success");
    assert_eq!(plan["status"]["status_code"], "UNSET");

    let run = spans
        .iter()
        .find(|s| s["name"] == "Bluesky RunEngine run")
        .unwrap();
    assert_eq!(run["parent_id"], id(plan));
    let mut under_run = 0;
    for s in &spans {
        let name = s["name"].as_str().unwrap();
        let up = ancestors(s, &by_id);
        if s != plan {
            assert_eq!(
                up.last(),
                Some(&"scan"),
                "{name} is not under the plan span"
            );
        }
        match name {
            // Before the run opens or after it closes: children of the plan span.
            "Bluesky RunEngine stage"
            | "Bluesky RunEngine unstage"
            | "Bluesky RunEngine open_run" => {
                assert_eq!(up, vec!["scan"], "{name}")
            }
            "scan" | "Bluesky RunEngine run" => {}
            "Ophyd Status" => {
                assert_eq!(
                    &up[1..],
                    ["Bluesky RunEngine run", "scan"],
                    "{name}: {up:?}"
                );
                under_run += 1;
            }
            _ => {
                assert_eq!(up, vec!["Bluesky RunEngine run", "scan"], "{name}");
                under_run += 1;
            }
        }
    }
    // 21 points × (checkpoint, set, wait, 3 trigger (two detectors and the
    // motor, triggerable as in ophyd), wait, create, 3 read, save) + close_run
    // + 84 statuses.
    assert_eq!(under_run, 21 * 12 + 1 + 84);
    let stages = spans
        .iter()
        .filter(|s| s["name"] == "Bluesky RunEngine stage")
        .count();
    assert_eq!(stages, 3);
}

#[test]
fn bluesky_parents_keeps_bluesky_layout_of_127_traces_for_a_21_point_scan() {
    let default = spans_of("count-default", "examples/scan.toml", &[], &[], 0);
    assert_eq!(traces(&default), 1);
    let bluesky = spans_of(
        "count-bluesky",
        "examples/scan.toml",
        &["--bluesky-parents"],
        &[],
        0,
    );
    // Bluesky: the run span (1), each set (21) and wait (42) a root, each
    // trigger's status (63: two detectors and the motor) a root; only the
    // move statuses sit under their set.
    assert_eq!(traces(&bluesky), 127);
    assert!(bluesky.iter().all(|s| s["name"] != "scan"), "no plan span");
    let run = bluesky
        .iter()
        .find(|s| s["name"] == "Bluesky RunEngine run")
        .unwrap();
    assert!(
        bluesky.iter().all(|s| s["parent_id"] != id(run)),
        "the run span parents nothing"
    );
    // Same spans otherwise.
    assert_eq!(default.len(), bluesky.len() + 1);
}

#[test]
fn run_trace_and_bluesky_parents_exclude_each_other() {
    let out = skyrun_env(
        &[
            "run",
            "examples/scan.toml",
            "--run-trace",
            "--bluesky-parents",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--bluesky-parents") && err.contains("cannot be used with"),
        "{err}"
    );
}

#[test]
fn a_traceparent_parents_the_plan_span_and_a_failed_plan_fails_it() {
    let plan = test_dir("fail").join("fail.toml");
    let devices = fs::canonicalize("examples/beamline.toml").unwrap();
    fs::write(
        &plan,
        format!(
            "devices = {devices:?}\n[[steps]]\nstub = \"open_run\"\n\
             [[steps]]\nstub = \"mv\"\nmotors = [\"motor\"]\npositions = [20.0]\n\
             [[steps]]\nstub = \"close_run\"\n"
        ),
    )
    .unwrap();
    let spans = spans_of(
        "traceparent",
        plan.to_str().unwrap(),
        &[],
        &[(
            "TRACEPARENT",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
        1,
    );
    assert!(spans
        .iter()
        .all(|s| s["context"]["trace_id"] == "0x4bf92f3577b34da6a3ce929d0e0e4736"));
    let root = spans
        .iter()
        .find(|s| s["name"] == "fail")
        .expect("the plan span");
    assert_eq!(root["parent_id"], "0x00f067aa0ba902b7");
    assert_eq!(root["status"]["status_code"], "ERROR");
    assert!(root["status"]["description"]
        .as_str()
        .unwrap()
        .contains("outside the limits"));
    assert_eq!(root["attributes"]["exit_status"], "fail");
    let run = spans
        .iter()
        .find(|s| s["name"] == "Bluesky RunEngine run")
        .unwrap();
    assert_eq!(run["parent_id"], id(root));
    let set = spans
        .iter()
        .find(|s| s["name"] == "Bluesky RunEngine set")
        .unwrap();
    assert_eq!(
        set["parent_id"],
        id(run),
        "the TRACEPARENT does not outrank the run span"
    );
}

#[test]
fn console_spans_on_a_terminal_come_after_the_live_table() {
    if !Path::new("/usr/bin/script").exists() {
        panic!("this test needs util-linux's `script` for a pseudo-terminal (apt-get install -y bsdutils)");
    }
    let cmd = format!("{} run examples/count.toml --trace console", skyrun_bin());
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("TRACEPARENT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = Running::spawn(script, &cmd).wait(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last_row = text
        .rfind("|        10 |")
        .expect("the live table's last row");
    let first_span = text.find("\"trace_id\"").expect("the spans");
    assert!(
        first_span > last_row,
        "span JSON inside the live table:\n{text}"
    );
    assert_eq!(
        text.matches("\"name\": \"count\"").count(),
        1,
        "the plan span is printed"
    );
    assert!(text.contains("success: plan 'count' finished"));
}

/// The engine rule the command's default rests on, through the library:
/// with one trace per run, a remote parent (a TRACEPARENT, the command's
/// plan span) parents the run span but never its messages, while a
/// `trace_plan` span inside the run still parents the messages it wraps.
#[test]
fn with_run_trace_a_remote_parent_never_outranks_the_run_span() {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use skyrun::{plan_stubs as bps, preprocessors, telemetry::trace_plan, Plan, RunEngine};
    use skyrun_actors::{sim::SynAxis, DeviceHandle, SpanTracer};

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let remote = SpanContext::new(
        TraceId::from(0x4bf9_u128),
        SpanId::from(0x00f0_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    actix::System::new().block_on(async {
        let re = RunEngine::builder()
            .tracer(SpanTracer::from_provider(&provider, "bluesky.tracing"))
            .run_trace(true)
            .build();
        let motor = DeviceHandle::spawn(SynAxis::new("motor").with_velocity(1000.0));
        let m = motor.clone();
        let inner = trace_plan(
            "inner",
            Plan::new("inner", move |ctx| async move {
                bps::abs_set(&ctx, &m, 1.0, None, false).await?;
                bps::wait_group(&ctx, None).await
            }),
        );
        let plan = preprocessors::run_wrapper(inner, Default::default());
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        re.run_with_parent(plan, parent).await.unwrap();
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let one = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (run, inner, set) = (
        one("Bluesky RunEngine run"),
        one("inner"),
        one("Bluesky RunEngine set"),
    );
    assert!(spans
        .iter()
        .all(|s| s.span_context.trace_id() == TraceId::from(0x4bf9_u128)));
    assert_eq!(
        run.parent_span_id,
        SpanId::from(0x00f0_u64),
        "the run span under the remote parent"
    );
    assert_eq!(
        inner.parent_span_id,
        run.span_context.span_id(),
        "the plan's span under the run span"
    );
    assert_eq!(
        set.parent_span_id,
        inner.span_context.span_id(),
        "trace_plan still parents its messages"
    );
}
