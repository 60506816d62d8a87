//! `--documents nats:PREFIX` publishes every document to JetStream in
//! bluesky-nats's wire format (issue 16, point 4): subject
//! `PREFIX.<name>`, msgpack body, header `run_id` = the start uid, and the
//! span context; the stream is created when missing. A consumer on another
//! connection, started after the runs (a late consumer), gets every
//! document, in order.
#![cfg(feature = "nats")]

mod process;
mod remote_support;

use std::time::Duration;

use remote_support::*;

#[test]
fn every_document_reaches_jetstream_in_order_in_bluesky_nats_format() {
    let dir = TempDir::new("remote-docs");
    let nats = Nats::start(&dir);
    dir.write(
        "devices.toml",
        "[[motor]]\nname = 'm'\n[[detector]]\nname = 'det'\nmotor = 'm'\n",
    );
    let plan = dir.write(
        "count.toml",
        "devices = 'devices.toml'\n[plan]\nname = 'count'\ndetectors = ['det']\nnum = 500\n",
    );
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for _ in 0..2 {
        let out = run_skyrun(
            &[
                "run",
                plan.to_str().unwrap(),
                "--nats",
                &nats.url(),
                "--documents",
                "nats:events.volatile",
                "-q",
            ],
            &[("TRACEPARENT", traceparent)],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let got = read_stream(&nats.url(), "bluesky");
    assert_eq!(
        got.len(),
        2 * 503,
        "start, descriptor, 500 events, stop, twice"
    );
    for run in got.chunks(503) {
        let names: Vec<&str> = run.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(names[0], "events.volatile.start");
        assert_eq!(names[1], "events.volatile.descriptor");
        assert!(names[2..502].iter().all(|n| *n == "events.volatile.event"));
        assert_eq!(names[502], "events.volatile.stop");
        let uid = run[0].doc["uid"].as_str().unwrap();
        assert!(
            run.iter().all(|m| m.header("run_id") == uid),
            "run_id is the start uid on every document"
        );
        assert_eq!(run[502].doc["run_start"], uid);
        assert_eq!(run[502].doc["exit_status"], "success");
        let seq: Vec<u64> = run[2..502]
            .iter()
            .map(|m| m.doc["seq_num"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seq,
            (1..=500).collect::<Vec<_>>(),
            "events in order, none lost"
        );
        assert!(run[2].doc["data"]["det"].is_number());
        let tp = run[0].header("traceparent");
        assert!(
            tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "{tp}"
        );
    }
    assert_ne!(got[0].header("run_id"), got[503].header("run_id"));
}

#[test]
fn documents_to_nats_need_a_url_and_a_valid_prefix() {
    let dir = TempDir::new("remote-docs-bad");
    dir.write(
        "devices.toml",
        "[[detector]]\nname = 'det'\nmotor = 'm'\n[[motor]]\nname = 'm'\n",
    );
    let plan = dir.write(
        "c.toml",
        "devices = 'devices.toml'\n[plan]\nname = 'count'\ndetectors = ['det']\n",
    );
    let out = run_skyrun(
        &["run", plan.to_str().unwrap(), "--documents", "nats:ev"],
        &[("SKYRUN_NATS", "")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--documents nats:ev needs the NATS URL"),
        "{}",
        text(&out)
    );
    let nats = Nats::start(&dir);
    let out = run_skyrun(
        &[
            "run",
            plan.to_str().unwrap(),
            "--documents",
            "nats:ev.>",
            "--nats",
            &nats.url(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("invalid subject prefix 'ev.>'"),
        "{}",
        text(&out)
    );
}

/// The Python with bluesky-nats installed: `$SKYRUN_BLUESKY_PYTHON`, else
/// the venv `.ci/run` makes (`.ci/venv`), else `python3`.
fn bluesky_python() -> String {
    if let Ok(p) = std::env::var("SKYRUN_BLUESKY_PYTHON") {
        return p;
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    if venv.is_file() {
        return venv.display().to_string();
    }
    "python3".into()
}

const CONSUMER: &str = r#"
import asyncio, json, sys
from bluesky_nats.nats_dispatcher import NATSDispatcher

async def main(url, want_stops):
    got = []
    async with NATSDispatcher(subject="events.volatile.>", servers=url, stream_name="bluesky") as d:
        d.subscribe(lambda name, doc: got.append([str(name), doc.get("uid") or doc.get("run_start") or doc.get("descriptor"), doc.get("seq_num")]))
        print("ready", flush=True)
        for _ in range(300):
            await asyncio.sleep(0.1)
            if sum(1 for g in got if g[0] == "stop") >= want_stops:
                break
    print(json.dumps(got), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"#;

#[test]
fn bluesky_nats_python_dispatcher_receives_every_document() {
    use std::io::{BufRead, BufReader};
    let python = bluesky_python();
    let mut probe = std::process::Command::new(&python);
    probe
        .args(["-c", "import bluesky_nats.nats_dispatcher"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let probe = Running::spawn(probe, &python).wait(Duration::from_secs(60));
    assert!(
        probe.status.success(),
        "{python} cannot import bluesky_nats (pip install bluesky-nats==2.0.1, as .ci/run does, \
         or set SKYRUN_BLUESKY_PYTHON): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let dir = TempDir::new("remote-docs-py");
    let nats = Nats::start(&dir);
    dir.write(
        "devices.toml",
        "[[motor]]\nname = 'm'\n[[detector]]\nname = 'det'\nmotor = 'm'\n",
    );
    let plan = dir.write(
        "count.toml",
        "devices = 'devices.toml'\n[plan]\nname = 'count'\ndetectors = ['det']\nnum = 20\n",
    );
    let run = || {
        let out = run_skyrun(
            &[
                "run",
                plan.to_str().unwrap(),
                "--nats",
                &nats.url(),
                "--documents",
                "nats:events.volatile",
                "-q",
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    // One run before the consumer starts (it must catch up from the stream), one while it runs.
    run();
    let script = dir.write("consumer.py", CONSUMER);
    let mut consumer = std::process::Command::new(&python);
    consumer
        .arg(&script)
        .args([&nats.url(), "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = Running::spawn(consumer, "the bluesky-nats consumer");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.child().stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    assert_eq!(ready.as_deref(), Ok("ready"), "the consumer did not start");
    run();
    let line = rx.recv_timeout(Duration::from_secs(60));
    drop(child); // killed
    let got: Vec<(String, Option<String>, Option<u64>)> =
        serde_json::from_str(&line.expect("the consumer's result within 60 s")).unwrap();
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    let one: Vec<&str> = ["start", "descriptor"]
        .into_iter()
        .chain(std::iter::repeat_n("event", 20))
        .chain(["stop"])
        .collect();
    assert_eq!(
        names,
        [one.clone(), one].concat(),
        "every document of both runs, in order"
    );
    let seqs: Vec<u64> = got.iter().filter_map(|g| g.2).collect();
    assert_eq!(
        seqs,
        [(1..=20).collect::<Vec<_>>(), (1..=20).collect()].concat()
    );
}

/// JetStream gone for good: `publish` waits for room in its full buffer at
/// most `full_wait`, then counts the document lost, so the caller (the
/// document thread, and behind it the plan) is never held longer; the
/// report says how many were lost and why.
#[test]
fn a_broker_gone_for_good_never_holds_the_publisher_past_its_wait() {
    use skyrun_remote::documents::{DocumentPublisher, PublisherOptions};
    let dir = TempDir::new("remote-docs-gone");
    let mut nats = Nats::start(&dir);
    let publisher = DocumentPublisher::connect(
        &nats.url(),
        "events.gone",
        PublisherOptions {
            buffer: 2,
            ack_timeout: Duration::from_millis(300),
            retries: 0,
            full_wait: Duration::from_millis(2),
            ..Default::default()
        },
    )
    .expect("the publisher connects while NATS is up");
    nats.kill();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cx = opentelemetry::Context::new();
        let doc = serde_json::json!({"uid": "x", "time": 0.0});
        // More than the acknowledgements the publisher keeps in flight
        // (4,096) and its buffer: with no broker, room runs out.
        let dropped = (0..6000)
            .filter(|_| publisher.publish("event", &doc, &cx).is_err())
            .count();
        let report = publisher.finish(Duration::from_secs(5));
        let _ = tx.send((dropped, report));
    });
    let (dropped, report) = rx.recv_timeout(Duration::from_secs(120)).expect(
        "6,000 publishes with NATS gone returned within 120 s (each waits at most 2 ms for room)",
    );
    assert!(dropped > 0, "a full buffer drops documents: {report}");
    assert!(
        report.first_error.is_some(),
        "the report says why: {report}"
    );
    assert!(report.failed >= dropped as u64, "{report}");
    assert_eq!(report.acked, 0, "{report}");
    assert!(
        report.to_string().contains("lost"),
        "the report says documents were lost: {report}"
    );
}
