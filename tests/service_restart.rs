//! The task record survives the service: killed (SIGKILL, no chance to
//! write anything more) and started again on the same state folder, the
//! real `skyrun service` binary lists the tasks it had: a finished task with
//! its outcome, a pending task still runnable, and the task that was running
//! ended in error, saying the service stopped while it ran.

mod process;
mod service_support;

use serde_json::json;
use service_support::{Service, TempDir};

const SHORT: &str = r#"{"name": "count", "params": {"detectors": ["det"], "num": 3}, "instrument_session": "cm1-1"}"#;
/// Runs until told (hours): still running when the service is killed.
const UNTIL_TOLD: &str = r#"{"name": "count", "params": {"detectors": ["det"], "num": 100000, "delay": 0.05}, "instrument_session": "cm1-1"}"#;

#[test]
fn tasks_survive_a_restart_and_a_task_running_at_the_crash_is_reported_lost() {
    let dir = TempDir::new("svc-restart");
    let svc = Service::start(&dir, &[]);
    let done = svc.submit(SHORT);
    svc.begin(&done, &[]);
    assert_eq!(svc.wait_complete(&done)["outcome"]["outcome"], "success");
    svc.wait_state("IDLE");
    let deleted = svc.submit(SHORT);
    assert_eq!(
        svc.call("DELETE", &format!("/tasks/{deleted}"), None, &[])
            .0,
        200
    );
    let pending = svc.submit(SHORT);
    let running = svc.submit(UNTIL_TOLD);
    svc.begin(&running, &[]);
    svc.wait_state("RUNNING");
    svc.kill();

    // A line cut short (as a crash mid-write leaves it) is skipped.
    let record = dir.path("state/tasks.jsonl");
    let mut text = std::fs::read_to_string(&record).expect("the task record");
    text.push_str(r#"{"at": "2026-01-01T00:00:00Z", "task": {"task_id": "#);
    std::fs::write(&record, text).unwrap();

    let svc = Service::start(&dir, &[]);
    let (code, list) = svc.get("/tasks");
    assert_eq!(code, 200, "{list}");
    let ids: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [&done, &pending, &running], "{list}");

    let (_, t) = svc.get(&format!("/tasks/{done}"));
    assert_eq!(
        (&t["is_complete"], &t["outcome"]),
        (
            &json!(true),
            &json!({"outcome": "success", "result": null, "type": "NoneType"})
        ),
        "{t}"
    );
    let (_, t) = svc.get(&format!("/tasks/{running}"));
    assert_eq!(
        (&t["is_complete"], &t["is_pending"], &t["outcome"]["type"]),
        (&json!(true), &json!(false), &json!("TaskLost")),
        "{t}"
    );
    let msg = t["outcome"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("the service stopped while the task was running (last recorded at 20")
            && msg.contains("found lost at the restart at 20"),
        "{msg}"
    );
    assert_eq!(t["errors"], json!([msg]));
    assert_eq!(
        svc.get("/tasks?task_status=ERROR").1["tasks"][0]["task_id"],
        json!(running)
    );
    assert_eq!(svc.get("/worker/state").1, "IDLE");

    // The pending task runs after the restart.
    svc.begin(&pending, &[]);
    assert_eq!(svc.wait_complete(&pending)["outcome"]["outcome"], "success");
    svc.wait_state("IDLE");
    assert_eq!(
        svc.call("DELETE", &format!("/tasks/{done}"), None, &[]).0,
        200
    );
    svc.stop();

    // A clean stop and start: the same list, less what was deleted.
    let svc = Service::start(&dir, &[]);
    let (_, list) = svc.get("/tasks");
    let kept: Vec<(&str, &serde_json::Value)> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["task_id"].as_str().unwrap(), &t["outcome"]["outcome"]))
        .collect();
    assert_eq!(
        kept,
        [
            (pending.as_str(), &json!("success")),
            (running.as_str(), &json!("error"))
        ],
        "{list}"
    );
}
