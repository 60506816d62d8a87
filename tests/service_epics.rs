//! `skyrun service` on a device file of EPICS devices, against real IOCs
//! started here (a caproto motor-record IOC and a pythonSoftIOC): it connects
//! them as `skyrun run` does, lists them (`GET /devices`) and runs a scan on
//! them whose events record the positions asked for, read by the IOCs, and
//! connects them again when its environment reloads; a PV that does not
//! connect fails the start naming it.

#![cfg(all(feature = "epics", feature = "service"))]

#[path = "../epics/tests/common/mod.rs"]
mod common;
mod process;
mod service_support;

use std::time::Duration;

use common::{repeater_port, Ioc};
use serde_json::Value;
use service_support::{wait_environment, Service, TempDir};

/// The environment that makes the service's CA client search only `iocs`.
fn ca_env(iocs: &[&Ioc]) -> Vec<(String, String)> {
    let addrs: Vec<String> = iocs.iter().map(|i| i.addr().to_string()).collect();
    vec![
        ("EPICS_CA_AUTO_ADDR_LIST".into(), "NO".into()),
        ("EPICS_CA_ADDR_LIST".into(), addrs.join(" ")),
        ("EPICS_CA_REPEATER_PORT".into(), repeater_port().to_string()),
    ]
}

#[test]
fn the_service_lists_epics_devices_and_runs_a_scan_on_them() {
    let motors = Ioc::motors(1, &["--velocity", "20"]);
    let signals = Ioc::signals(1);
    let dir = TempDir::new("service-epics");
    let devices = format!(
        "[[epics_motor]]\nname = 'm1'\nprefix = '{m}:MTR1'\ntimeout = 30.0\n\
         [[epics_signal]]\nname = 'tick'\nread_pv = '{s}:TICK'\nread_only = true\n",
        m = motors.prefix,
        s = signals.prefix
    );
    let env = ca_env(&[&motors, &signals]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let svc = Service::start_with(&dir, &devices, &["--connect-timeout", "10"], &env);

    let (code, listed) = svc.get("/devices");
    assert_eq!(code, 200, "{listed}");
    let names: Vec<&str> = listed["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("a device list: {listed}"))
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["m1", "tick"], "{listed}");
    let protocols = |name: &str| -> Vec<String> {
        let (_, d) = svc.get(&format!("/devices/{name}"));
        d["protocols"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}'s protocols: {d}"))
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        protocols("m1").iter().any(|p| p == "Movable"),
        "{:?}",
        protocols("m1")
    );
    assert!(protocols("tick").iter().any(|p| p == "Readable"));

    let mut ws = svc.run_plan(
        r#"{"name": "scan", "params": {"detectors": ["tick"], "motor": "m1", "start": -1, "stop": 1, "num": 3}, "instrument_session": "s"}"#,
        &[],
    );
    let rest = ws.rest();
    let docs: Vec<&Value> = rest.iter().filter(|d| d.get("doc").is_some()).collect();
    let positions: Vec<f64> = docs
        .iter()
        .filter(|d| d["name"] == "event")
        .filter_map(|d| d["doc"]["data"]["m1"].as_f64())
        .collect();
    assert_eq!(positions, [-1.0, 0.0, 1.0], "{rest:?}");
    let descriptor = docs
        .iter()
        .find(|d| d["name"] == "descriptor")
        .unwrap_or_else(|| panic!("a descriptor: {rest:?}"));
    assert_eq!(
        descriptor["doc"]["data_keys"]["m1"]["source"],
        format!("PV:{}:MTR1.RBV", motors.prefix)
    );
    assert_eq!(
        descriptor["doc"]["data_keys"]["tick"]["source"],
        format!("PV:{}:TICK", signals.prefix)
    );
    let stop = docs
        .iter()
        .find(|d| d["name"] == "stop")
        .unwrap_or_else(|| panic!("a stop document: {rest:?}"));
    assert_eq!(stop["doc"]["exit_status"], "success", "{stop}");

    // A reload connects the file's EPICS devices again (one more here).
    let (_, first) = svc.get("/environment");
    dir.write(
        "devices.toml",
        &format!(
            "{devices}[[epics_signal]]\nname = 'ao'\nread_pv = '{s}:AO:00000'\nread_only = true\n",
            s = signals.prefix
        ),
    );
    assert_eq!(svc.call("DELETE", "/environment", None, &[]).0, 200);
    let second = wait_environment(&svc, |e| {
        e["initialized"] == true && e["environment_id"] != first["environment_id"]
    });
    assert!(second["error_message"].is_null(), "{second}");
    assert_eq!(svc.get("/devices/ao").0, 200);
    let task = svc.submit(
        r#"{"name": "count", "params": {"detectors": ["ao", "tick"], "num": 2}, "instrument_session": "s"}"#,
    );
    svc.begin(&task, &[]);
    let done = svc.wait_complete(&task);
    assert_eq!(done["outcome"]["outcome"], "success", "{done}");
    svc.stop();
}

#[test]
fn a_pv_that_does_not_connect_fails_the_service_start_naming_it() {
    let signals = Ioc::signals(1);
    let dir = TempDir::new("service-epics-missing");
    let devices = dir.write(
        "devices.toml",
        &format!(
            "[[epics_signal]]\nname = 'tick'\nread_pv = '{s}:TICK'\n\
             [[epics_signal]]\nname = 'ghost'\nread_pv = '{s}:GHOST'\n",
            s = signals.prefix
        ),
    );
    let env = ca_env(&[&signals]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skyrun"))
        .arg("service")
        .arg("--devices")
        .arg(&devices)
        .args(["--no-state", "--bind", "127.0.0.1:0", "--trace", "none"])
        .args(["--connect-timeout", "1"])
        .envs(env)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start skyrun service");
    let end = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("skyrun service did not give up on a missing PV within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}:GHOST (ghost)", signals.prefix)) && !err.contains("(tick)"),
        "{err}"
    );
}
