//! EPICS devices served by `skyrun serve` (a device server next to the
//! IOCs) to `skyrun run` elsewhere over a real nats-server: a scan of a
//! caproto motor record read through the server records the positions it
//! asked for, and the server's "Ophyd Status" span of each move (with its
//! put, DMOV 0 and DMOV 1 events) is the child of the engine's set span, in
//! one trace across both processes.
#![cfg(all(feature = "nats", feature = "epics"))]

mod process;
mod remote_support;

#[path = "../epics/tests/common/mod.rs"]
mod epics_common;

use epics_common::{repeater_port, Ioc};
use remote_support::*;

#[test]
fn a_device_server_serves_epics_motors_in_one_trace() {
    let motors = Ioc::motors(1, &["--velocity", "20"]);
    let signals = Ioc::signals(1);
    let dir = TempDir::new("remote-epics");
    let nats = Nats::start(&dir);
    let addrs = format!("{} {}", motors.addr(), signals.addr());
    let repeater = repeater_port().to_string();
    let env = [
        ("EPICS_CA_AUTO_ADDR_LIST", "NO"),
        ("EPICS_CA_ADDR_LIST", addrs.as_str()),
        ("EPICS_CA_REPEATER_PORT", repeater.as_str()),
    ];
    let srv_devices = dir.write(
        "server.toml",
        &format!(
            "[[epics_motor]]\nname = 'em'\nprefix = '{}'\n[[epics_signal]]\nname = 'tick'\nread_pv = '{}'\nread_only = true\n",
            motors.pv("MTR1"),
            signals.pv("TICK")
        ),
    );
    let srv_spans = dir.path("server.jsonl");
    let trace = format!("jsonl:{}", srv_spans.display());
    let mut server = Serve::start(
        &srv_devices,
        &nats.url(),
        "ioc1",
        &["--trace", &trace],
        &env,
    );
    dir.write("devices.toml", "[[remote]]\nserver = 'ioc1'\n");
    let plan = dir.write(
        "scan.toml",
        "devices = 'devices.toml'\n[plan]\nname = 'scan'\ndetectors = ['tick']\nmotor = 'em'\nstart = -1.0\nstop = 1.0\nnum = 3\n",
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
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    server.stop();

    let docs = documents(&docs);
    let positions: Vec<f64> = docs
        .iter()
        .filter(|(n, _)| n == "event")
        .map(|(_, d)| d["data"]["em"].as_f64().unwrap())
        .collect();
    assert_eq!(positions, [-1.0, 0.0, 1.0]);
    let (_, desc) = docs.iter().find(|(n, _)| n == "descriptor").unwrap();
    assert_eq!(
        desc["data_keys"]["em"]["source"],
        format!("PV:{}", motors.pv("MTR1.RBV"))
    );

    let (client, server) = (spans(&cli_spans), spans(&srv_spans));
    let moves: Vec<&serde_json::Value> = server
        .iter()
        .filter(|s| {
            s["name"] == "Ophyd Status"
                && s["attributes"]["device_name"] == "em"
                && s["attributes"]["status_type"] == "MoveStatus"
        })
        .collect();
    assert_eq!(moves.len(), 3, "one move status per point: {server:?}");
    for s in moves {
        let parent = s["parent_id"].as_str().expect("a parent");
        let p = client
            .iter()
            .find(|c| span_id(c) == parent)
            .unwrap_or_else(|| panic!("the parent of {s} is not a client span"));
        assert_eq!(p["name"], "Bluesky RunEngine set");
        assert_eq!(trace_id(s), trace_id(p));
        assert_eq!(service(s), "skyrun-serve-ioc1");
        let events: Vec<&str> = s["events"]
            .as_array()
            .expect("span events")
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["put", "DMOV 0", "DMOV 1"], "{s}");
    }
}
