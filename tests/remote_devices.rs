//! Devices on a device server (`skyrun serve`, a real process) used by
//! `skyrun run` through `[[remote]]` tables over a real nats-server: plans
//! and stubs work unchanged, and the server's "Ophyd Status" span is the
//! child of the engine's set span, asserted from both processes' exported
//! spans (issue 16, points 1 and 2).
#![cfg(feature = "nats")]

mod process;
mod remote_support;

use remote_support::*;
use serde_json::Value;

const SERVER_DEVICES: &str = r#"
[[motor]]
name = "rm"
velocity = 1000.0
limits = [-5.0, 5.0]
[[detector]]
name = "rdet"
motor = "rm"
[[motor_family]]
prefix = "slow"
count = 4
velocity = 2.0
[[signal]]
name = "rsig"
value = 1.5
"#;

fn scan_plan(dir: &TempDir, devices: &str) -> std::path::PathBuf {
    dir.write("devices.toml", devices);
    dir.write(
        "scan.toml",
        r#"
devices = "devices.toml"
[plan]
name = "scan"
detectors = ["rdet"]
motor = "rm"
start = -1.0
stop = 1.0
num = 3
"#,
    )
}

/// The server spans named "Ophyd Status" of device `device`, each with the
/// client span that is its parent (asserting that there is one).
fn linked<'a>(
    client: &'a [Value],
    server: &'a [Value],
    device: &str,
) -> Vec<(&'a Value, &'a Value)> {
    server
        .iter()
        .filter(|s| s["name"] == "Ophyd Status" && s["attributes"]["device_name"] == device)
        .map(|s| {
            let parent = s["parent_id"]
                .as_str()
                .unwrap_or_else(|| panic!("no parent: {s}"));
            let p = client
                .iter()
                .find(|c| span_id(c) == parent)
                .unwrap_or_else(|| panic!("parent {parent} of a server span is not a client span"));
            (s, p)
        })
        .collect()
}

fn scan_with_one_trace(env: &[(&str, &str)]) {
    let dir = TempDir::new("remote-scan");
    let nats = Nats::start(&dir);
    let srv_devices = dir.write("server.toml", SERVER_DEVICES);
    let srv_spans = dir.path("server.jsonl");
    let trace = format!("jsonl:{}", srv_spans.display());
    let mut server = Serve::start(&srv_devices, &nats.url(), "ioc1", &["--trace", &trace], env);
    let plan = scan_plan(
        &dir,
        "[[motor]]\nname = 'local'\n[[remote]]\nserver = 'ioc1'\n",
    );
    let (cli_spans, docs) = (dir.path("client.jsonl"), dir.path("docs.jsonl"));
    let out = run_skyrun(
        &[
            "run",
            plan.to_str().unwrap(),
            "--nats",
            &nats.url(),
            "--trace",
            &format!("jsonl:{}", cli_spans.display()),
            "--documents",
            docs.to_str().unwrap(),
        ],
        env,
    );
    assert!(out.status.success(), "{}", text(&out));
    server.stop();

    // Documents: a scan over the remote motor, reading the remote detector.
    let docs = documents(&docs);
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["start", "descriptor", "event", "event", "event", "stop"]
    );
    let positions: Vec<f64> = docs
        .iter()
        .filter(|(n, _)| n == "event")
        .map(|(_, d)| d["data"]["rm"].as_f64().unwrap())
        .collect();
    assert_eq!(positions, [-1.0, 0.0, 1.0]);
    let peak = docs
        .iter()
        .filter(|(n, _)| n == "event")
        .map(|(_, d)| d["data"]["rdet"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(peak, 1.0, "the remote detector reads the remote motor");
    assert_eq!(docs[5].1["exit_status"], "success");
    assert!(
        docs[1].1["data_keys"]["rdet"].is_object(),
        "describe came from the server"
    );

    // Spans: every move status on the server is the child of a set span of the client, in its trace.
    let (client, server) = (spans(&cli_spans), spans(&srv_spans));
    // The motor is triggered too (as in ophyd), so its trigger statuses are
    // linked as well; the move statuses are the set spans' children.
    let links: Vec<_> = linked(&client, &server, "rm")
        .into_iter()
        .filter(|(s, _)| s["attributes"]["status_type"] == "MoveStatus")
        .collect();
    assert_eq!(links.len(), 3, "one move status per point: {server:?}");
    for (s, p) in links {
        assert_eq!(p["name"], "Bluesky RunEngine set");
        assert_eq!(trace_id(s), trace_id(p));
        assert_eq!(service(s), "skyrun-serve-ioc1");
        assert_eq!(service(p), "skyrun");
        assert_eq!(s["attributes"]["status_type"], "MoveStatus");
    }
}

#[test]
fn a_scan_on_a_device_server_is_one_trace_across_both_processes() {
    scan_with_one_trace(&[]);
}

#[test]
fn the_jaeger_propagator_links_the_processes_too() {
    scan_with_one_trace(&[("OTEL_PROPAGATORS", "jaeger")]);
}

#[test]
fn many_sets_are_in_flight_at_once_and_stubs_work_unchanged() {
    let dir = TempDir::new("remote-stubs");
    let nats = Nats::start(&dir);
    let srv_devices = dir.write("server.toml", SERVER_DEVICES);
    let srv_spans = dir.path("server.jsonl");
    let trace = format!("jsonl:{}", srv_spans.display());
    let mut server = Serve::start(&srv_devices, &nats.url(), "ioc1", &["--trace", &trace], &[]);
    dir.write(
        "devices.toml",
        "[[remote]]\nserver = 'ioc1'\ndevices = ['slow0', 'slow1', 'slow2', 'slow3', 'rm', 'rsig', 'rdet']\n",
    );
    let plan = dir.write(
        "steps.toml",
        r#"
devices = "devices.toml"
[[steps]]
stub = "mv"
motors = ["slow0", "slow1", "slow2", "slow3"]
positions = [0.5, 0.5, 0.5, 0.5]
[[steps]]
stub = "mvr"
motors = ["rm"]
positions = [2.0]
[[steps]]
stub = "abs_set"
device = "rsig"
value = 4.0
[[steps]]
stub = "wait"
[[steps]]
stub = "open_run"
[[steps]]
stub = "trigger_and_read"
detectors = ["rdet", "rsig", "rm"]
[[steps]]
stub = "close_run"
"#,
    );
    let docs = dir.path("docs.jsonl");
    let out = run_skyrun(
        &[
            "run",
            plan.to_str().unwrap(),
            "--nats",
            &nats.url(),
            "--documents",
            docs.to_str().unwrap(),
            "--trace",
            "jsonl:/dev/null",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    server.stop();
    let docs = documents(&docs);
    let event = docs
        .iter()
        .find(|(n, _)| n == "event")
        .expect("an event")
        .1
        .clone();
    assert_eq!(
        event["data"]["rm"], 2.0,
        "mvr moved relative to the position read from the server"
    );
    assert_eq!(event["data"]["rsig"], 4.0);
    // The four slow moves (0.25 s each) were in flight together: each
    // started before any of them ended.
    let server = spans(&srv_spans);
    let slow: Vec<&Value> = server
        .iter()
        .filter(|s| {
            s["name"] == "Ophyd Status"
                && s["attributes"]["device_name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("slow")
        })
        .collect();
    assert_eq!(slow.len(), 4);
    let last_start = slow
        .iter()
        .map(|s| s["start_time"].as_str().unwrap())
        .max()
        .unwrap();
    let first_end = slow
        .iter()
        .map(|s| s["end_time"].as_str().unwrap())
        .min()
        .unwrap();
    assert!(
        last_start < first_end,
        "the moves did not overlap: {slow:?}"
    );
}

#[test]
fn discovery_errors_name_the_server_and_the_device_in_run_and_check() {
    let dir = TempDir::new("remote-discovery");
    let nats = Nats::start(&dir);
    let srv_devices = dir.write("server.toml", SERVER_DEVICES);
    let _server = Serve::start(&srv_devices, &nats.url(), "ioc1", &[], &[]);
    let url = nats.url();
    // `check` asks the servers as `run` does, and says the same.
    for cmd in [&["run", "-q"][..], &["check"][..]] {
        let run = |devices: &str, env: &[(&str, &str)], nats: bool| {
            let plan = scan_plan(&dir, devices);
            let mut args = vec![cmd[0], plan.to_str().unwrap()];
            args.extend(&cmd[1..]);
            if nats {
                args.extend(["--nats", &url]);
            }
            run_skyrun(&args, env)
        };
        let expect = |out: std::process::Output, code: i32, says: &str| {
            assert_eq!(out.status.code(), Some(code), "{cmd:?}: {}", text(&out));
            assert!(text(&out).contains(says), "{cmd:?}: {}", text(&out));
        };

        expect(
            run(
                "[[remote]]\nserver = 'ioc1'\ndevices = ['rm', 'nope']\n",
                &[],
                true,
            ),
            1,
            "device server 'ioc1' has no device 'nope'",
        );
        expect(
            run("[[remote]]\nserver = 'ioc9'\n", &[], true),
            1,
            "device server 'ioc9' did not answer",
        );
        expect(
            run(
                "[[motor]]\nname = 'rm'\n[[remote]]\nserver = 'ioc1'\n",
                &[],
                true,
            ),
            2,
            "device 'rm' of device server 'ioc1' has the name of a device declared in this file",
        );
        expect(
            run(
                "[[remote]]\nserver = 'ioc1'\ndevices = ['rdet']\n",
                &[],
                true,
            ),
            2,
            "unknown device 'rm'",
        );
        // Without a URL anywhere.
        let out = run(
            "[[remote]]\nserver = 'ioc1'\n",
            &[("SKYRUN_NATS", "")],
            false,
        );
        assert_ne!(out.status.code(), Some(0), "{cmd:?}: {}", text(&out));
        assert!(
            text(&out).contains("needs a NATS URL"),
            "{cmd:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_bad_remote_table_is_a_file_error() {
    let dir = TempDir::new("remote-bad");
    let plan = scan_plan(&dir, "[[remote]]\nserver = 'a.b'\n");
    let out = run_skyrun(&["check", plan.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("devices.toml:2:10: invalid server name 'a.b'"),
        "{}",
        text(&out)
    );
    let plan = scan_plan(&dir, "[[remote]]\nserver = 'x'\nport = 1\n");
    let out = run_skyrun(&["check", plan.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("port"), "{}", text(&out));
}

#[test]
fn check_asks_the_device_servers_which_devices_they_serve() {
    let dir = TempDir::new("remote-check");
    let nats = Nats::start(&dir);
    let srv_devices = dir.write("server.toml", SERVER_DEVICES);
    let _server = Serve::start(&srv_devices, &nats.url(), "ioc1", &[], &[]);
    let url = nats.url();
    let check = |devices: &str| {
        let plan = scan_plan(&dir, devices);
        run_skyrun(&["check", plan.to_str().unwrap(), "--nats", &url], &[])
    };

    // The scan names only remote devices: valid once the server has said so.
    let out = check("[[motor]]\nname = 'local'\n[[remote]]\nserver = 'ioc1'\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("is valid"), "{said}");
    // local + rm, rdet, slow0..slow3, rsig
    assert!(said.contains("(8 devices"), "{said}");
}
