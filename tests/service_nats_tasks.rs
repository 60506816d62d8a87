//! `skyrun service --nats URL`: the task record is a JetStream key-value
//! bucket the services on that NATS share. Two real `skyrun service`
//! processes on one real nats-server (started by the test; skipped, saying
//! so, without one) list each other's tasks with their outcomes, only the
//! owner runs or deletes one, and a third with the id of a running one is
//! refused; a service killed and started again keeps
//! the list (nothing in its state folder but its id) and records its running
//! task as lost, which a peer had already presumed; NATS stopped mid-run
//! stalls neither the plan nor the HTTP API, and the bucket (and each
//! service's view of it) catches up when NATS is back.
#![cfg(feature = "nats")]

mod process;
mod remote_support;
mod service_support;

use std::time::{Duration, Instant};

use remote_support::{nats_server_present, Nats};
use serde_json::{json, Value};
use service_support::{Service, TempDir};

const SHORT: &str = r#"{"name": "count", "params": {"detectors": ["det"], "num": 3}, "instrument_session": "cm1-1"}"#;
/// Runs until told (hours): still running when the service is killed.
const UNTIL_TOLD: &str = r#"{"name": "count", "params": {"detectors": ["det"], "num": 100000, "delay": 0.05}, "instrument_session": "cm1-1"}"#;
/// About 8 s: still running when NATS is stopped, and longer than a write to
/// the bucket may wait (5 s), so writes fail and are retried.
const SECONDS: &str = r#"{"name": "count", "params": {"detectors": ["det"], "num": 80, "delay": 0.1}, "instrument_session": "cm1-1"}"#;

/// Polls `GET /tasks/{id}` on `svc` until `want` holds (at most `within`): the task.
fn wait_task(
    svc: &Service,
    id: &str,
    within: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + within;
    loop {
        let (code, task) = svc.get(&format!("/tasks/{id}"));
        if code == 200 && want(&task) {
            return task;
        }
        assert!(
            Instant::now() < end,
            "{what}: not within {within:?} (last answer {code}: {task})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ids `GET /tasks` lists on `svc`.
fn listed(svc: &Service) -> Vec<String> {
    let (code, list) = svc.get("/tasks");
    assert_eq!(code, 200, "{list}");
    list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_services_on_one_nats_share_the_task_list_and_only_the_owner_runs_a_task() {
    if !nats_server_present() {
        return;
    }
    let (dir_a, dir_b) = (TempDir::new("svc-kv-a"), TempDir::new("svc-kv-b"));
    let nats = Nats::start(&dir_a);
    let url = nats.url();
    let a = Service::start(&dir_a, &["--nats", &url, "--service-id", "svc-a"]);
    let b = Service::start(&dir_b, &["--nats", &url, "--service-id", "svc-b"]);

    let done = a.submit(SHORT);
    a.begin(&done, &[]);
    assert_eq!(a.wait_complete(&done)["outcome"]["outcome"], "success");
    let seen = wait_task(
        &b,
        &done,
        Duration::from_secs(30),
        "B lists A's task, ended",
        |t| t["is_complete"] == true,
    );
    assert_eq!(
        (&seen["outcome"], &seen["errors"], &seen["task"]["name"]),
        (
            &json!({"outcome": "success", "result": null, "type": "NoneType"}),
            &json!([]),
            &json!("count")
        ),
        "{seen}"
    );

    // A task pending on B: A lists it, cannot run or delete it; B can.
    let pending = b.submit(SHORT);
    wait_task(
        &a,
        &pending,
        Duration::from_secs(30),
        "A lists B's pending task",
        |t| t["is_pending"] == true,
    );
    let body = format!(r#"{{"task_id": "{pending}"}}"#);
    let (code, r) = a.call("PUT", "/worker/task", Some(&body), &[]);
    assert_eq!(
        (code, &r["detail"]),
        (
            409,
            &json!(format!(
                "Task {pending} belongs to service 'svc-b': only it runs the task"
            ))
        )
    );
    let (code, r) = a.call("DELETE", &format!("/tasks/{pending}"), None, &[]);
    assert_eq!(
        (code, &r["detail"]),
        (
            409,
            &json!("the task belongs to service 'svc-b': delete it there")
        )
    );
    assert_eq!(a.get("/worker/state").1, "IDLE", "A ran nothing of B's");

    assert_eq!(listed(&a), [done.as_str(), pending.as_str()]);
    assert_eq!(
        listed(&b),
        [pending.as_str(), done.as_str()],
        "B lists its own tasks first"
    );
    let (_, errs) = b.get("/tasks?task_status=PENDING");
    assert_eq!(errs["tasks"][0]["task_id"], json!(pending));
    assert_eq!(errs["tasks"].as_array().unwrap().len(), 1, "{errs}");

    b.begin(&pending, &[]);
    assert_eq!(b.wait_complete(&pending)["outcome"]["outcome"], "success");
    wait_task(
        &a,
        &pending,
        Duration::from_secs(30),
        "A sees B's task ended",
        |t| t["outcome"]["outcome"] == "success",
    );
    assert_eq!(
        b.call("DELETE", &format!("/tasks/{done}"), None, &[]).0,
        409
    );
    assert_eq!(
        a.call("DELETE", &format!("/tasks/{done}"), None, &[]).0,
        200
    );
    let end = Instant::now() + Duration::from_secs(30);
    while listed(&b).contains(&done) {
        assert!(
            Instant::now() < end,
            "B still lists the task A deleted after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A third service with A's id while A runs: refused, naming the id.
    let devices = dir_b.write("devices.toml", service_support::DEVICES);
    let out = process::start_skyrun(
        &[
            "service",
            "--devices",
            devices.to_str().unwrap(),
            "--no-state",
            "--bind",
            "127.0.0.1:0",
            "--nats",
            &url,
            "--service-id",
            "svc-a",
        ],
        &[],
    )
    .wait(Duration::from_secs(60));
    process::assert_clean_failure(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "error: shared task record: service id 'svc-a' is in use: a service with that id is \
             running on JetStream bucket skyrun_tasks at {url} (heartbeat seen)"
        )),
        "{}",
        process::text(&out)
    );
    a.stop();
    b.stop();
}

#[test]
fn a_restart_keeps_the_shared_list_and_records_the_running_task_lost() {
    if !nats_server_present() {
        return;
    }
    let (dir, dir_peer) = (TempDir::new("svc-kv-restart"), TempDir::new("svc-kv-peer"));
    let nats = Nats::start(&dir);
    let url = nats.url();
    // No --service-id: the id made at the first start, kept in the state folder.
    let svc = Service::start(&dir, &["--nats", &url]);
    let id = std::fs::read_to_string(dir.path("state/service-id")).expect("the service's id");
    let peer = Service::start(&dir_peer, &["--nats", &url, "--service-id", "peer"]);
    let done = svc.submit(SHORT);
    svc.begin(&done, &[]);
    assert_eq!(svc.wait_complete(&done)["outcome"]["outcome"], "success");
    svc.wait_state("IDLE");
    let pending = svc.submit(SHORT);
    let running = svc.submit(UNTIL_TOLD);
    svc.begin(&running, &[]);
    svc.wait_state("RUNNING");
    wait_task(
        &peer,
        &running,
        Duration::from_secs(30),
        "the peer sees the task running",
        |t| t["is_pending"] == false && t["is_complete"] == false,
    );
    svc.kill();

    // The peer presumes it lost once the service's heartbeat is silent.
    let presumed = wait_task(
        &peer,
        &running,
        Duration::from_secs(60),
        "the peer presumes the task lost",
        |t| t["is_complete"] == true,
    );
    let msg = presumed["outcome"]["message"].as_str().unwrap();
    assert_eq!(presumed["outcome"]["type"], "TaskLost", "{presumed}");
    assert!(
        msg.starts_with(&format!(
            "service '{}' that ran the task has not been heard from for ",
            id.trim()
        )),
        "{msg}"
    );

    let svc = Service::start(&dir, &["--nats", &url]);
    assert!(
        !dir.path("state/tasks.jsonl").exists(),
        "with --nats the tasks are in the bucket, not the file"
    );
    assert_eq!(
        listed(&svc),
        [done.as_str(), pending.as_str(), running.as_str()]
    );
    let (_, t) = svc.get(&format!("/tasks/{done}"));
    assert_eq!(t["outcome"]["outcome"], "success", "{t}");
    let (_, t) = svc.get(&format!("/tasks/{running}"));
    assert_eq!(
        (&t["is_complete"], &t["is_pending"], &t["outcome"]["type"]),
        (&json!(true), &json!(false), &json!("TaskLost")),
        "{t}"
    );
    let msg = t["outcome"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with("the service stopped while the task was running (last recorded at 20")
            && msg.contains("found lost at the restart at 20"),
        "{msg}"
    );
    // The owner's word is recorded: the peer now says the same.
    wait_task(
        &peer,
        &running,
        Duration::from_secs(30),
        "the peer shows the owner's verdict",
        |t| t["outcome"]["message"] == json!(msg),
    );
    svc.begin(&pending, &[]);
    assert_eq!(svc.wait_complete(&pending)["outcome"]["outcome"], "success");
    svc.stop();
    peer.stop();
}

#[test]
fn nats_stopped_mid_run_stalls_neither_the_plan_nor_the_api_and_the_bucket_catches_up() {
    if !nats_server_present() {
        return;
    }
    let (dir, dir_late) = (TempDir::new("svc-kv-down"), TempDir::new("svc-kv-late"));
    let mut nats = Nats::start(&dir);
    let url = nats.url();
    let svc = Service::start(&dir, &["--nats", &url, "--service-id", "svc-a"]);
    let first = svc.submit(SECONDS);
    svc.begin(&first, &[]);
    svc.wait_state("RUNNING");
    nats.kill();

    // wait_complete bounds each request (30 s) and the whole wait (120 s).
    assert_eq!(svc.wait_complete(&first)["outcome"]["outcome"], "success");
    svc.wait_state("IDLE");
    let second = svc.submit(SHORT);
    svc.begin(&second, &[]);
    assert_eq!(svc.wait_complete(&second)["outcome"]["outcome"], "success");
    assert_eq!(listed(&svc), [first.as_str(), second.as_str()]);

    // NATS back: the tasks' latest records reach the bucket; a service
    // started now lists them.
    nats.restart();
    let late = Service::start(&dir_late, &["--nats", &url, "--service-id", "svc-late"]);
    for id in [&first, &second] {
        wait_task(
            &late,
            id,
            Duration::from_secs(60),
            "the bucket has the task's outcome",
            |t| t["outcome"]["outcome"] == "success",
        );
    }
    // And the first service follows the bucket again: it lists a task of
    // the service started after NATS came back.
    let theirs = late.submit(SHORT);
    wait_task(
        &svc,
        &theirs,
        Duration::from_secs(60),
        "the first service lists the late one's task",
        |t| t["is_pending"] == true,
    );
    svc.stop();
    late.stop();
}
