//! What the `skyrun` binary tells a new user: export failures with their
//! destination and cause, endpoints refused before the run, warnings for
//! flags that do nothing, the event table outside a terminal, and `check`'s
//! summary of a large beamline.

mod process;

use std::fs;
use std::path::PathBuf;

use process::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// Writes `devices` and `plan` to a fresh directory; returns their paths.
fn write_files(test: &str, devices: &str, plan: &str) -> (PathBuf, PathBuf) {
    let dir = test_dir(test);
    let (d, p) = (dir.join("devices.toml"), dir.join("plan.toml"));
    fs::write(&d, devices).unwrap();
    fs::write(&p, plan).unwrap();
    (d, p)
}

#[test]
fn a_refused_export_says_where_how_and_why_once() {
    // Nothing listens there.
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = skyrun_env(
        &["run", "examples/count.toml", "-q"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    );
    // A collector that is down never fails the run.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "skyrun: trace export to OTLP http/protobuf to {endpoint}/v1/traces (from OTEL_EXPORTER_OTLP_ENDPOINT): "
        )),
        "{err}"
    );
    assert_eq!(err.matches("connection refused: ").count(), 1, "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

#[test]
fn an_endpoint_without_scheme_is_refused_before_the_run() {
    let dir = test_dir("no-scheme");
    let docs = dir.join("docs.jsonl");
    let out = skyrun_env(
        &[
            "run",
            "examples/count.toml",
            "--documents",
            docs.to_str().unwrap(),
        ],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")],
    );
    assert_clean_failure(&out, 2);
    assert_eq!(
        text(&out.stderr).trim(),
        "error: invalid OTLP endpoint 'localhost:4318' (from OTEL_EXPORTER_OTLP_ENDPOINT): it has no scheme: write http://localhost:4318 (or https://)"
    );
    // Nothing ran.
    assert!(!docs.exists() || fs::read_to_string(&docs).unwrap().is_empty());
}

#[test]
fn run_trace_without_a_target_warns_that_nothing_is_exported() {
    let out = skyrun_env(
        &[
            "run",
            "examples/count.toml",
            "-q",
            "--run-trace",
            "--trace-all",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("skyrun: warning: --run-trace and --trace-all given, but there is no trace target: no span will be exported"),
        "{}",
        text(&out.stderr)
    );
    // With a target, no warning.
    let out = skyrun_env(
        &[
            "run",
            "examples/count.toml",
            "-q",
            "--run-trace",
            "--trace",
            "console",
        ],
        &[],
    );
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_trace_file_that_cannot_be_created_says_the_os_error_once() {
    let out = skyrun(&[
        "run",
        "examples/count.toml",
        "--trace",
        "jsonl:/nonexistent/s.jsonl",
    ]);
    assert_clean_failure(&out, 2);
    let err = text(&out.stderr);
    assert_eq!(
        err.trim(),
        "error: cannot create trace file /nonexistent/s.jsonl: No such file or directory (os error 2)"
    );
}

#[test]
fn table_prints_the_event_table_outside_a_terminal() {
    // stdout is a pipe here, as in CI logs or `| tee`.
    let out = skyrun(&["run", "examples/scan.toml", "--table"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("|   seq_num |         time |      motor |"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("|        "))
            .count(),
        21,
        "{stdout}"
    );
    assert!(stdout.contains("generator scan ['"), "{stdout}");
    // The start line has a local date-time (YYYY-MM-DD HH:MM:SS), not an epoch.
    let start = stdout
        .lines()
        .find(|l| l.starts_with("Transient Scan ID: 1"))
        .expect("start line");
    let when = start.rsplit("Time: ").next().unwrap();
    assert_eq!(when.len(), 19, "{start}");
    assert_eq!(&when[4..5], "-", "{start}");
    assert_eq!(&when[13..14], ":", "{start}");
    // No progress bar escape codes outside a terminal.
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(stdout.contains("success: plan 'scan' finished"), "{stdout}");
}

#[test]
fn check_summarises_families_of_a_large_beamline() {
    let devices = "[[motor_family]]\nprefix = \"m\"\ncount = 1000\nlimits = [-1, 1]\n\n[[detector_family]]\nprefix = \"d\"\ncount = 1000\nmotor_family = \"m\"\n";
    let plan = "[[steps]]\nstub = \"mv\"\nmotors = \"m\"\nposition = 0.5\n\n[[steps]]\nstub = \"count\"\ndetectors = \"d*\"\nnum = 2\n";
    let (d, p) = write_files("families-1000", devices, plan);
    let out = skyrun(&[
        "check",
        p.to_str().unwrap(),
        "--devices",
        d.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for line in [
        "families:    'm' (1000 motors), 'd' (1000 detectors)",
        "plan:        plan (2 steps)",
        "    1. mv m0..m999 to 0.5 (1000 motors)",
        "    2. count [d0..d999 (1000)] 2 times",
        "detectors:   d0..d999 (family 'd', 1000)",
        "motors:      m0..m999 (family 'm', 1000)",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in\n{stdout}"
        );
    }
    // Readable: no line longer than a terminal or two.
    assert!(stdout.lines().all(|l| l.len() < 160), "{stdout}");
}

#[test]
fn check_lists_signals_as_signals_and_counts_steps_in_the_singular() {
    let plan = "devices = \"devices.toml\"\n\n[[steps]]\nstub = \"abs_set\"\ndevice = \"temperature\"\nvalue = 3.0\n";
    let (_, p) = write_files("signals", DEVICES, plan);
    let out = skyrun(&["check", p.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("plan:        plan (1 step)\n"), "{stdout}");
    assert!(stdout.contains("motors:      -\n"), "{stdout}");
    assert!(stdout.contains("signals:     temperature\n"), "{stdout}");
}

#[test]
fn run_warns_about_what_check_refuses_and_still_runs_it() {
    let plan = "devices = \"devices.toml\"\n\n[plan]\nname = \"scan\"\ndetectors = [\"det\"]\nmotor = \"motor\"\nstart = -1.0\nstop = 9.0\nnum = 3\n";
    let (d, p) = write_files("run-warns", DEVICES, plan);
    let out = skyrun(&["run", p.to_str().unwrap()]);
    assert_clean_failure(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "skyrun: warning: {}:8:8: stop = 9 is outside the limits [-5, 5] of motor 'motor' ({}:1): plan 'scan' would fail when it moves there\n",
            p.display(),
            d.display()
        )),
        "{err}"
    );
    // The engine still reports the failure itself.
    assert!(
        text(&out.stdout).starts_with("fail: "),
        "{}",
        text(&out.stdout)
    );
}
