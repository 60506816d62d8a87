//! blueapi 1.21.1's own CLI against `skyrun service`, no message bus
//! configured: plans, devices, state, run in the foreground (over the
//! WebSocket), run in the background, pause, state, resume, stop, abort.

mod process;
mod service_support;

use serde_json::json;
use service_support::{blueapi, blueapi_ok, Service, TempDir};

#[test]
fn blueapis_cli_drives_the_service() {
    let dir = TempDir::new("svc-blueapi");
    let svc = Service::start(&dir, &[]);

    let plans = blueapi_ok(&dir, &svc, &["plans"]);
    for name in [
        "count",
        "scan",
        "rel_scan",
        "list_scan",
        "grid_scan",
        "fly",
        "mv",
    ] {
        assert!(
            plans.lines().any(|l| l == name),
            "plan {name} listed:\n{plans}"
        );
    }
    assert!(plans.contains("detectors=[string] (Required)"), "{plans}");
    let devices = blueapi_ok(&dir, &svc, &["devices"]);
    assert!(
        devices.contains("motor\n    Readable, Movable['float']"),
        "{devices}"
    );
    assert_eq!(blueapi_ok(&dir, &svc, &["state"]).trim(), "IDLE");
    let env = blueapi_ok(&dir, &svc, &["env", "-r"]);
    assert!(env.contains("Environment is initialized"), "{env}");

    // In the foreground: the documents arrive (BestEffortCallback's table),
    // the ProgressEvents drive the CLI's progress bar (tqdm, on stderr), then success.
    let fg = blueapi(
        &dir,
        &svc,
        &[
            "run",
            "-i",
            "cm1-1",
            "count",
            r#"{"detectors": ["det"], "num": 3}"#,
        ],
    );
    let out = String::from_utf8_lossy(&fg.stdout);
    assert!(out.contains("Plan succeeded"), "{out}");
    let bar = String::from_utf8_lossy(&fg.stderr);
    assert!(
        fg.status.success() && bar.contains("count: |") && bar.contains("100%"),
        "{bar}"
    );
    assert!(
        out.contains("|         3 |"),
        "the third event's row:\n{out}"
    );

    // Bad parameters and unknown plans, as blueapi's client reports them.
    let bad = blueapi(
        &dir,
        &svc,
        &[
            "run",
            "-i",
            "cm1-1",
            "count",
            r#"{"detectors": ["det"], "num": "x"}"#,
        ],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("Invalid value 'x' for field num: Input should be a valid integer"),
        "{err}"
    );
    let unknown = blueapi(&dir, &svc, &["run", "-i", "cm1-1", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Plan 'nope' was not recognised"));

    // In the background: pause, it is PAUSED, resume, it runs on; stop ends
    // it in success. The count runs until told (100,000 points 0.05 s
    // apart), so however slowly the CLI starts, the task is still running.
    let until_told = r#"{"detectors": ["det"], "num": 100000, "delay": 0.05}"#;
    let run_bg = || {
        blueapi_ok(
            &dir,
            &svc,
            &["run", "--bg", "-i", "cm1-1", "count", until_told],
        )
        .trim()
        .to_owned()
    };
    let id = run_bg();
    blueapi_ok(&dir, &svc, &["pause"]);
    svc.wait_state("PAUSED");
    assert_eq!(blueapi_ok(&dir, &svc, &["state"]).trim(), "PAUSED");
    // Busy while paused.
    let busy = blueapi(
        &dir,
        &svc,
        &["run", "--bg", "-i", "cm1-1", "count", until_told],
    );
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("409"),
        "{busy:?}"
    );
    blueapi_ok(&dir, &svc, &["resume"]);
    svc.wait_state("RUNNING");
    let (_, task) = svc.get(&format!("/tasks/{id}"));
    assert_eq!(
        (task["is_complete"].clone(), task["errors"].clone()),
        (json!(false), json!([])),
        "resumed, the task runs on: {task}"
    );
    blueapi_ok(&dir, &svc, &["stop"]);
    let task = svc.wait_complete(&id);
    assert_eq!(
        task["outcome"],
        json!({"outcome": "success", "result": null, "type": "NoneType"}),
        "{task}"
    );
    svc.wait_state("IDLE");

    // Abort with a reason: the task's outcome carries it.
    let id = run_bg();
    svc.wait_state("RUNNING");
    blueapi_ok(&dir, &svc, &["abort", "beam lost"]);
    let task = svc.wait_complete(&id);
    assert_eq!(
        task["outcome"],
        json!({"outcome": "error", "type": "RequestAbort", "message": "beam lost"}),
        "{task}"
    );
    svc.wait_state("IDLE");
}
