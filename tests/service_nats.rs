//! `skyrun service --nats URL`: every task's documents reach JetStream for
//! subscribers that are not HTTP clients, in bluesky-nats's format (subject
//! `PREFIX.<name>`, msgpack body, header `run_id`) with the task's id in
//! header `task_id`, and so do its WorkerEvents and ProgressEvents (JSON, as
//! blueapi's, on `PREFIX.worker_event` and `PREFIX.progress_event`), read
//! back by a late consumer on its own connection. A real nats-server started
//! by the test (skipped, saying so, without one).
#![cfg(feature = "nats")]

mod process;
mod remote_support;
mod service_support;

use std::time::Duration;

use remote_support::{nats_server_present, read_stream, Nats};
use serde_json::json;
use service_support::{Service, TempDir};

#[test]
fn each_tasks_documents_reach_jetstream_with_its_task_id() {
    if !nats_server_present() {
        return;
    }
    let dir = TempDir::new("svc-nats");
    let nats = Nats::start(&dir);
    let url = nats.url();
    let svc = Service::start(
        &dir,
        &["--nats", &url, "--documents-prefix", "beamline.tasks"],
    );
    let mut ids = Vec::new();
    for num in [2, 3] {
        let id = svc.submit(&format!(
            r#"{{"name": "count", "params": {{"detectors": ["det"], "num": {num}}}, "instrument_session": "cm1-1"}}"#
        ));
        svc.begin(&id, &[]);
        let task = svc.wait_complete(&id);
        assert_eq!(task["outcome"]["outcome"], "success", "{task}");
        ids.push(id);
    }
    // SIGTERM: the service waits for JetStream to take every document.
    svc.stop();

    let stored = read_stream(&url, "beamline_tasks");
    let (events, docs): (Vec<_>, Vec<_>) =
        stored.iter().partition(|m| m.subject.ends_with("_event"));
    let of = |id: &str| -> Vec<(String, String, serde_json::Value)> {
        docs.iter()
            .filter(|m| m.header("task_id") == id)
            .map(|m| {
                (
                    m.subject.clone(),
                    m.header("run_id").to_owned(),
                    m.doc.clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        docs.len(),
        of(&ids[0]).len() + of(&ids[1]).len(),
        "every document carries one of the tasks' ids"
    );
    for (id, num) in ids.iter().zip([2, 3]) {
        let docs = of(id);
        let subjects: Vec<&str> = docs.iter().map(|d| d.0.as_str()).collect();
        let mut want = vec!["beamline.tasks.start", "beamline.tasks.descriptor"];
        want.extend(std::iter::repeat_n("beamline.tasks.event", num));
        want.push("beamline.tasks.stop");
        assert_eq!(subjects, want, "task {id}");
        let start = &docs[0].2;
        assert_eq!(start["plan_name"], "count");
        assert_eq!(start["num_points"], num);
        assert!(
            docs.iter().all(|d| d.1 == start["uid"]),
            "run_id is the start's uid"
        );
        assert_eq!(docs.last().unwrap().2["exit_status"], "success");

        // The task's events, in order, each with its id in header and body.
        let mine: Vec<&remote_support::Stored> = events
            .iter()
            .copied()
            .filter(|m| m.header("task_id") == id)
            .collect();
        let worker: Vec<&serde_json::Value> = mine
            .iter()
            .filter(|m| m.subject == "beamline.tasks.worker_event")
            .map(|m| &m.doc)
            .collect();
        assert!(worker.len() >= 2, "task {id}: {worker:?}");
        let (first, last) = (worker[0], worker[worker.len() - 1]);
        assert_eq!(
            (
                &first["state"],
                &first["task_status"]["task_id"],
                &first["task_status"]["task_complete"]
            ),
            (&json!("RUNNING"), &json!(id), &json!(false)),
            "{first}"
        );
        assert_eq!(
            (
                &last["state"],
                &last["task_status"]["task_complete"],
                &last["task_status"]["task_failed"]
            ),
            (&json!("IDLE"), &json!(true), &json!(false)),
            "{last}"
        );
        assert_eq!(
            last["task_status"]["result"]["outcome"], "success",
            "{last}"
        );
        let progress: Vec<&serde_json::Value> = mine
            .iter()
            .filter(|m| m.subject == "beamline.tasks.progress_event")
            .map(|m| &m.doc)
            .collect();
        assert!(
            !progress.is_empty() && progress.iter().all(|p| p["task_id"] == json!(id)),
            "task {id}: {progress:?}"
        );
        let end = progress.last().unwrap()["statuses"]
            .as_object()
            .and_then(|s| s.values().next())
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (&end["current"], &end["target"], &end["display_name"]),
            (&json!(num as f64), &json!(num as f64), &json!("count")),
            "{end}"
        );
        assert_eq!(
            events.iter().filter(|m| m.header("task_id") == id).count(),
            mine.len()
        );
    }
    assert_eq!(
        events.len(),
        events
            .iter()
            .filter(|m| ids.iter().any(|id| m.header("task_id") == id))
            .count(),
        "every event carries one of the tasks' ids"
    );
}

/// A NATS server without JetStream (enough for `[[remote]]` devices): the
/// service says at start that the documents do not go to NATS and that the
/// tasks are not shared there (kept in memory, `--no-state`), and serves.
#[test]
fn without_jetstream_the_service_says_so_and_serves() {
    if !nats_server_present() {
        return;
    }
    let dir = TempDir::new("svc-nats-nojs");
    let nats_port = process::free_port();
    // Killed when dropped.
    let _nats = process::Running::spawn(
        {
            let mut c = std::process::Command::new(remote_support::nats_server_bin());
            c.args(["-a", "127.0.0.1", "-p", &nats_port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            c
        },
        "nats-server without JetStream",
    );
    process::wait_port(nats_port, true, Duration::from_secs(10), "nats-server");
    let devices = dir.write("devices.toml", service_support::DEVICES);
    let port = process::free_port();
    let svc = process::start_skyrun(
        &[
            "service",
            "--devices",
            devices.to_str().unwrap(),
            "--no-state",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--nats",
            &format!("nats://127.0.0.1:{nats_port}"),
        ],
        &[],
    );
    process::wait_port(port, true, Duration::from_secs(60), "skyrun service");
    assert_eq!(service_support::status_on(port, "/worker/state"), 200);
    svc.signal("TERM");
    let out = svc.wait(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && err.contains("WARNING: the tasks' documents do not go to NATS at nats://127.0.0.1:")
            && err.contains("WARNING: the tasks are not shared on NATS at nats://127.0.0.1:"),
        "{}",
        process::text(&out)
    );
}
