//! Ctrl-C through real SIGINTs to the real `skyrun` binary, as Bluesky's
//! `SigintHandler`: a deferred pause, then a hard pause for a second
//! Ctrl-C, the prompt's four answers, and the stop document on every path.
//! Every wait is bounded: a child that does not end is killed and the test
//! fails saying so.

mod process;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use process::*;
use skyrun::{Document, ExitStatus};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The documents of a documents file, parsed.
fn read_documents(path: &Path) -> Vec<(String, Document)> {
    let body = fs::read_to_string(path).expect("documents file");
    body.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let name = v[0].as_str().expect("a document name").to_owned();
            let doc = Document::from_named(&name, v[1].clone()).expect("a valid document");
            (name, doc)
        })
        .collect()
}

/// A long count: 100 points, 50 ms apart.
const LONG_COUNT: &str =
    "[plan]\nname = \"count\"\ndetectors = [\"det\"]\nnum = 100\ndelay = 0.05\n";

/// Starts the plan file `plan` (text) with stdin piped (`-q` when `quiet`);
/// returns the running `skyrun` and its documents file once the plan is under way.
fn start_plan(name: &str, plan: &str, quiet: bool) -> (Running, PathBuf) {
    let dir = test_dir(name);
    let plan_path = dir.join("long.toml");
    fs::write(&plan_path, plan).unwrap();
    let docs = dir.join("docs.jsonl");
    let mut args = vec![
        "run",
        plan_path.to_str().unwrap(),
        "--devices",
        "examples/beamline.toml",
        "--documents",
        docs.to_str().unwrap(),
    ];
    if quiet {
        args.push("-q");
    }
    let mut cmd = skyrun_command(&args, &[]);
    cmd.stdin(Stdio::piped());
    let child = Running::spawn(cmd, name);
    // The start document is flushed as soon as it is emitted: by then the
    // plan runs and Ctrl-C is handled.
    wait_for_file(&docs, Duration::from_secs(30), "the start document", |s| {
        s.starts_with("[\"start\"")
    });
    (child, docs)
}

fn last_stop(docs: &Path) -> skyrun::RunStop {
    match read_documents(docs).pop() {
        Some((_, Document::Stop(stop))) => stop,
        other => panic!("the last document is not a stop: {other:?}"),
    }
}

/// Starts a long count, presses Ctrl-C and answers the prompt with `answer`;
/// returns how the program ended and its documents file.
fn ctrl_c_then(name: &str, answer: &[u8], quiet: bool) -> (std::process::Output, PathBuf) {
    let (mut child, docs) = start_plan(name, LONG_COUNT, quiet);
    child.signal("INT");
    child
        .child()
        .stdin
        .as_mut()
        .unwrap()
        .write_all(answer)
        .unwrap();
    (child.wait(Duration::from_secs(60)), docs)
}

#[test]
fn ctrl_c_pauses_and_asks_then_stop_ends_the_run_cleanly() {
    let (out, docs) = ctrl_c_then("ctrl_c_stop", b"s\n", false);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("A 'deferred pause' has been requested."),
        "{stderr}"
    );
    assert!(
        stderr.contains("resume, abort, stop or halt? [r/a/s/h]"),
        "{stderr}"
    );
    let stop = last_stop(&docs);
    assert_eq!(stop.exit_status, ExitStatus::Success);
    let n = stop.num_events["primary"];
    assert!(n < 100);
    // The summary says the operator stopped it, and how far it got.
    assert!(
        stdout.contains(&format!(
            "stopped: plan 'count' was stopped by the operator after {n} of 100 points ("
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("success:"), "{stdout}");
}

#[test]
fn ctrl_c_then_abort_writes_an_abort_stop_document() {
    let (out, docs) = ctrl_c_then("ctrl_c_abort", b"a\n", true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stop = last_stop(&docs);
    assert_eq!(stop.exit_status, ExitStatus::Abort);
    assert_eq!(
        stop.reason,
        "interrupted: aborted at the operator's request"
    );
}

#[test]
fn ctrl_c_then_halt_ends_without_cleanup_but_with_a_stop_document() {
    let (out, docs) = ctrl_c_then("ctrl_c_halt", b"h\n", false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(last_stop(&docs).exit_status, ExitStatus::Abort);
    assert!(
        text(&out.stdout).starts_with("halt: "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn ctrl_c_then_resume_finishes_the_plan() {
    let (out, docs) = ctrl_c_then("ctrl_c_resume", b"r\n", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stop = last_stop(&docs);
    assert_eq!(stop.exit_status, ExitStatus::Success);
    assert_eq!(stop.num_events["primary"], 100);
}

/// A plan whose next checkpoint is a minute away: one event, a 60 s sleep, another event.
const NO_CHECKPOINT_SOON: &str = r#"[[steps]]
stub = "open_run"

[[steps]]
stub = "trigger_and_read"
detectors = ["det2"]

[[steps]]
stub = "sleep"
seconds = 60.0

[[steps]]
stub = "trigger_and_read"
detectors = ["det2"]

[[steps]]
stub = "checkpoint"

[[steps]]
stub = "close_run"
"#;

#[test]
fn a_second_ctrl_c_pauses_at_once_and_the_run_is_kept() {
    // As Bluesky's SigintHandler: the first Ctrl-C asks for a pause at the
    // next checkpoint (a minute away here), the second (more than 100 ms
    // later, within 10 s) pauses at once, and the operator is asked; the
    // run is not aborted by the second Ctrl-C.
    let (mut child, docs) = start_plan("ctrl_c_twice", NO_CHECKPOINT_SOON, true);
    child.signal("INT");
    std::thread::sleep(std::time::Duration::from_millis(400));
    child.signal("INT");
    // Read the prompt before answering: the run waits for the operator.
    let mut stderr = child.child().stderr.take().unwrap();
    let mut seen = Vec::new();
    let prompt = b"[r/a/s/h] ";
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 256];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    while !seen.windows(prompt.len()).any(|w| w == prompt) {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(bytes) => seen.extend(bytes),
            Err(_) => panic!(
                "no pause prompt within 30 s of the second Ctrl-C: {}",
                text(&seen)
            ),
        }
    }
    let said = text(&seen);
    assert!(
        said.contains("A 'deferred pause' has been requested."),
        "{said}"
    );
    assert!(
        said.contains("A 'hard pause' has been requested."),
        "{said}"
    );
    // Still paused, not aborted: the run goes on when resumed... and here
    // the operator stops it.
    child
        .child()
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"s\n")
        .unwrap();
    let out = child.wait(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{said}");
    let stop = last_stop(&docs);
    assert_eq!(stop.exit_status, ExitStatus::Success, "{said}");
    // Paused during the sleep, before the second event.
    assert_eq!(stop.num_events.get("primary").copied().unwrap_or(0), 1);
}
