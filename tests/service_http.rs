//! `skyrun service` with a plain HTTP client: every error code of blueapi's
//! API, a pause that resumes to success through the engine, and one trace
//! from the client's `traceparent` to the device.

mod process;
mod service_support;

use serde_json::{json, Value};
use service_support::{wait_environment, Service, TempDir};

/// A count that runs until told (100,000 points, 0.05 s apart: hours): it
/// cannot end before the test pauses, aborts or stops it, however loaded
/// the machine.
const UNTIL_TOLD: &str = r#"{"name": "count", "params": {"detectors": ["det"], "num": 100000, "delay": 0.05}, "instrument_session": "cm1-1"}"#;

#[test]
fn error_codes_are_blueapis() {
    let dir = TempDir::new("svc-errors");
    let svc = Service::start(&dir, &[]);
    assert_eq!(svc.get("/healthz"), (200, json!({"status": "ok"})));
    assert_eq!(svc.get("/config/oidc").0, 204);
    assert_eq!(svc.get("/worker/state"), (200, json!("IDLE")));
    assert_eq!(svc.get("/worker/task"), (200, json!({"task_id": null})));
    assert_eq!(
        svc.get("/plans/nope"),
        (404, json!({"detail": "Item not found"}))
    );
    assert_eq!(
        svc.get("/devices/nope"),
        (404, json!({"detail": "Item not found"}))
    );
    assert_eq!(
        svc.get("/tasks/nope"),
        (404, json!({"detail": "Item not found"}))
    );
    let (code, dev) = svc.get("/api/v1/devices/motor");
    assert_eq!(code, 200);
    assert_eq!(dev["name"], "motor");
    assert!(dev["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Movable"));

    // The plan's schema names device parameters as device names.
    let (code, plan) = svc.get("/plans/scan");
    assert_eq!(code, 200);
    assert_eq!(plan["schema"]["properties"]["motor"]["type"], "string");
    assert_eq!(
        plan["schema"]["required"],
        json!(["detectors", "motor", "start", "stop", "num"])
    );
    assert_eq!(plan["schema"]["additionalProperties"], false);

    // 404 for an unknown plan, 422 naming each bad parameter.
    let (code, _) = svc.call(
        "POST",
        "/tasks",
        Some(r#"{"name": "nope", "params": {}, "instrument_session": "s"}"#),
        &[],
    );
    assert_eq!(code, 404);
    let (code, r) = svc.call(
        "POST",
        "/tasks",
        Some(r#"{"name": "scan", "params": {"detectors": ["det", "ghost"], "motor": "det", "start": "a", "num": 3, "extra": 1}, "instrument_session": "s"}"#),
        &[],
    );
    assert_eq!(code, 422, "{r}");
    let errors: Vec<(Value, Value)> = r["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["loc"].clone(), e["type"].clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (
                json!(["body", "params", "detectors", 1]),
                json!("value_error")
            ),
            (json!(["body", "params", "motor"]), json!("value_error")),
            (json!(["body", "params", "start"]), json!("float_type")),
            (json!(["body", "params", "stop"]), json!("missing")),
            (json!(["body", "params", "extra"]), json!("extra_forbidden")),
        ],
        "{r}"
    );
    assert!(
        r["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("unknown device 'ghost'"),
        "{r}"
    );
    assert!(
        r["detail"][1]["msg"]
            .as_str()
            .unwrap()
            .contains("'det' is a detector"),
        "{r}"
    );

    // A malformed body is a 422, a missing field names it, an oversized one a 413.
    let (code, r) = svc.call("POST", "/tasks", Some("{not json"), &[]);
    assert_eq!(code, 422, "{r}");
    assert_eq!(r["detail"][0]["type"], "json_invalid");
    let (code, r) = svc.call("POST", "/tasks", Some(r#"{"name": "count"}"#), &[]);
    assert_eq!(
        (code, r["detail"][0]["loc"].clone()),
        (422, json!(["body", "instrument_session"]))
    );
    let big = format!(
        r#"{{"name": "count", "params": {{"x": "{}"}}, "instrument_session": "s"}}"#,
        "a".repeat(300_000)
    );
    assert_eq!(svc.call("POST", "/tasks", Some(&big), &[]).0, 413);

    // Nothing runs: no state change is allowed.
    let (code, r) = svc.set_state(r#"{"new_state": "PAUSED"}"#);
    assert_eq!(
        (code, r),
        (
            400,
            json!({"detail": "Cannot transition from IDLE to PAUSED"})
        )
    );
    let (code, _) = svc.set_state(r#"{"new_state": "paused"}"#);
    assert_eq!(code, 422, "states are upper case");
    assert_eq!(
        svc.call("PUT", "/worker/task", Some(r#"{"task_id": "nope"}"#), &[])
            .0,
        404
    );
    assert_eq!(
        svc.call("PUT", "/worker/task", Some(r#"{"task_id": null}"#), &[])
            .0,
        422
    );

    // One task at a time: 409; a pending task can be deleted.
    let slow = svc.submit(UNTIL_TOLD);
    let other = svc.submit(UNTIL_TOLD);
    assert_eq!(
        svc.get("/tasks?task_status=PENDING").1["tasks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The client's traceparent on `PUT /worker/task` parents the task.
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03";
    svc.begin(&slow, &[("traceparent", traceparent)]);
    let (code, r) = svc.call(
        "PUT",
        "/worker/task",
        Some(&format!(r#"{{"task_id": "{other}"}}"#)),
        &[],
    );
    assert_eq!((code, r), (409, json!({"detail": "Worker already active"})));
    assert_eq!(svc.get("/worker/task").1, json!({"task_id": slow}));
    assert_eq!(
        svc.call("DELETE", &format!("/tasks/{other}"), None, &[]),
        (200, json!({"task_id": other}))
    );
    assert_eq!(svc.get(&format!("/tasks/{other}")).0, 404);
    let (code, _) = svc.set_state(r#"{"new_state": "ABORTING", "reason": "enough"}"#);
    assert_eq!(code, 202);
    let task = svc.wait_complete(&slow);
    assert_eq!(
        task["outcome"],
        json!({"outcome": "error", "type": "RequestAbort", "message": "enough"})
    );
    assert_eq!(task["errors"], json!(["enough"]));
    svc.wait_state("IDLE");
    assert_eq!(
        svc.get("/tasks?task_status=ERROR").1["tasks"][0]["task_id"],
        json!(slow)
    );
    assert_eq!(svc.get("/tasks?task_status=bogus").0, 422);

    let spans = svc.stop();
    let task_span = spans
        .iter()
        .find(|s| s["name"] == "task")
        .expect("a task span");
    assert_eq!(
        (&task_span["context"]["trace_id"], &task_span["parent_id"]),
        (
            &json!("0x0af7651916cd43dd8448eb211c80319c"),
            &json!("0xb7ad6b7169203331")
        ),
        "the client's span parents the task"
    );
    assert_eq!(task_span["attributes"]["exit_status"], "abort");
}

/// Raises `max` to the `seq_num` of `data` when it is an event document.
fn max_seq(data: &Value, max: &mut u64) {
    if data["name"] == "event" {
        *max = (*max).max(data["doc"]["seq_num"].as_u64().unwrap_or(0));
    }
}

#[test]
fn pause_resumes_from_the_checkpoint_and_the_trace_runs_from_the_client_to_the_device() {
    let dir = TempDir::new("svc-pause");
    let svc = Service::start(&dir, &[]);
    // blueapi's client sends flags 03 (sampled + random), on the handshake too.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
    let mut ws = svc.run_plan(UNTIL_TOLD, &[("traceparent", traceparent)]);
    let mut seen = 0;
    let third = ws.until("the third event", |d| {
        max_seq(d, &mut seen);
        d["name"] == "event" && d["doc"]["seq_num"].as_u64() >= Some(3)
    });
    let id = third["task_id"].as_str().unwrap().to_owned();
    // Progress, as blueapi's ProgressEvent: the run's points done of its num_points.
    let progress = ws.until("a ProgressEvent past the third point", |d| {
        max_seq(d, &mut seen);
        d.get("statuses")
            .and_then(|s| s.as_object())
            .and_then(|s| s.values().next())
            .is_some_and(|v| v["current"].as_f64() >= Some(3.0))
    });
    assert_eq!(progress["task_id"], json!(id));
    let statuses = progress["statuses"].as_object().unwrap();
    assert_eq!(statuses.len(), 1, "one run: {progress}");
    let (run_uid, view) = statuses.iter().next().unwrap();
    let current = view["current"].as_f64().unwrap();
    assert_eq!(
        (
            &view["display_name"],
            &view["initial"],
            &view["target"],
            &view["unit"],
            &view["done"],
            &view["percentage"]
        ),
        (
            &json!("count"),
            &json!(0.0),
            &json!(100000.0),
            &json!("points"),
            &json!(false),
            &json!(current / 100000.0)
        ),
        "{progress}"
    );
    assert!(
        view["time_elapsed"].as_f64().is_some() && view["time_remaining"].as_f64().is_some(),
        "{progress}"
    );

    let (code, state) = svc.set_state(r#"{"new_state": "PAUSED"}"#);
    assert_eq!(code, 202, "{state}");
    ws.until("the WorkerEvent saying PAUSED", |d| {
        max_seq(d, &mut seen);
        d["state"] == "PAUSED"
    });
    let at_pause = seen;
    svc.wait_state("PAUSED");
    // Paused, the task is neither failed nor complete (blueapi marks it failed).
    let (_, task) = svc.get(&format!("/tasks/{id}"));
    assert_eq!(
        (task["is_complete"].clone(), task["errors"].clone()),
        (json!(false), json!([]))
    );
    let (code, r) = svc.set_state(r#"{"new_state": "PAUSED"}"#);
    assert_eq!(
        (code, r),
        (
            400,
            json!({"detail": "Cannot transition from PAUSED to PAUSED"})
        )
    );
    assert_eq!(svc.set_state(r#"{"new_state": "RUNNING"}"#).0, 202);
    // The run goes on from its checkpoint: new points, numbered on from the pause.
    ws.until("new events after the resume", |d| {
        d["name"] == "event" && d["doc"]["seq_num"].as_u64() > Some(at_pause + 2)
    });
    // Stop ends the run (and the task) in success.
    assert_eq!(svc.set_state(r#"{"new_state": "STOPPING"}"#).0, 202);
    let rest = ws.rest();
    let stop = rest
        .iter()
        .find(|d| d["name"] == "stop")
        .expect("the stop document");
    assert_eq!(stop["doc"]["exit_status"], "success", "{stop}");
    assert_eq!(&stop["doc"]["run_start"], &json!(run_uid));
    let last_progress = rest
        .iter()
        .rfind(|d| d.get("statuses").is_some())
        .expect("a ProgressEvent at the end of the run");
    assert_eq!(
        (
            &last_progress["statuses"][run_uid]["done"],
            &last_progress["statuses"][run_uid]["percentage"]
        ),
        (&json!(true), &json!(1.0)),
        "{last_progress}"
    );
    let last = rest.last().expect("the WorkerEvent that ends the task");
    assert_eq!(
        last["task_status"],
        json!({"task_id": id, "task_complete": true, "task_failed": false,
               "result": {"outcome": "success", "result": null, "type": "NoneType"}}),
        "{last}"
    );
    let task = svc.wait_complete(&id);
    assert_eq!(
        task["outcome"],
        json!({"outcome": "success", "result": null, "type": "NoneType"}),
        "{task}"
    );
    assert_eq!(task["errors"], json!([]));
    svc.wait_state("IDLE");

    let spans = svc.stop();
    let by_name = |n: &'static str| spans.iter().filter(move |s| s["name"] == n);
    let task_span = by_name("task").next().expect("a task span");
    let trace = "0x4bf92f3577b34da6a3ce929d0e0e4736";
    assert_eq!(task_span["context"]["trace_id"], trace);
    assert_eq!(
        task_span["parent_id"], "0x00f067aa0ba902b7",
        "the client's span parents the task"
    );
    assert_eq!(task_span["attributes"]["task_id"], json!(id));
    assert_eq!(task_span["attributes"]["exit_status"], "success");
    let run = by_name("Bluesky RunEngine run").next().expect("a run span");
    assert_eq!(
        run["parent_id"], task_span["context"]["span_id"],
        "the task parents the run"
    );
    let statuses: Vec<&Value> = by_name("Ophyd Status").collect();
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| s["context"]["trace_id"] == trace),
        "the devices' spans are in the client's trace"
    );
}

/// Polls `GET /environment` until `done` says so (at most 60 s).
#[test]
fn the_environment_reloads_the_device_file_while_idle() {
    let dir = TempDir::new("svc-env");
    let svc = Service::start(&dir, &[]);
    let (_, first) = svc.get("/environment");
    assert_eq!(first["initialized"], true, "{first}");
    assert_eq!(svc.get("/devices/det2").0, 404);

    // A new device in the file: after the reload it is offered, under a new id.
    let devices = std::fs::read_to_string(dir.path("devices.toml")).unwrap();
    dir.write(
        "devices.toml",
        &format!("{devices}[[detector]]\nname = 'det2'\nmotor = 'motor'\n"),
    );
    let (code, r) = svc.call("DELETE", "/environment", None, &[]);
    assert_eq!(
        (code, r),
        (
            200,
            json!({"environment_id": first["environment_id"], "initialized": false})
        )
    );
    let second = wait_environment(&svc, |e| {
        e["initialized"] == true && e["environment_id"] != first["environment_id"]
    });
    assert_eq!(svc.get("/devices/det2").0, 200);
    let task = svc.submit(r#"{"name": "count", "params": {"detectors": ["det2"], "num": 2}, "instrument_session": "s"}"#);
    svc.begin(&task, &[]);
    assert_eq!(svc.wait_complete(&task)["outcome"]["outcome"], "success");
    svc.wait_state("IDLE");

    // A broken file: GET /environment says why; the service goes on with what it had.
    dir.write("devices.toml", "[[detector]\nname = ");
    assert_eq!(svc.call("DELETE", "/environment", None, &[]).0, 200);
    let broken = wait_environment(&svc, |e| !e["error_message"].is_null());
    assert_eq!(broken["initialized"], false, "{broken}");
    assert_ne!(broken["environment_id"], second["environment_id"]);
    assert!(
        broken["error_message"]
            .as_str()
            .unwrap()
            .contains("devices.toml"),
        "the error names the file: {broken}"
    );
    assert_eq!(svc.get("/devices/det2").0, 200);

    // Not while a task runs.
    let running = svc.submit(UNTIL_TOLD);
    svc.begin(&running, &[]);
    let (code, r) = svc.call("DELETE", "/environment", None, &[]);
    assert_eq!(
        (code, r),
        (
            409,
            json!({"detail": "Worker busy: the environment is reloaded only while no task runs"})
        )
    );
    assert_eq!(
        svc.set_state(r#"{"new_state": "ABORTING", "reason": "done"}"#)
            .0,
        202
    );
    svc.wait_complete(&running);
}
