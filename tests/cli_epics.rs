//! `skyrun run` and `skyrun check` on a device file of EPICS devices, against
//! real IOCs started here (a caproto motor-record IOC and a pythonSoftIOC,
//! from `epics/tests/iocs`): a scan of an EPICS motor from a family records
//! the positions it asked for, reading signals of a `{i:05}` family; PVs that
//! do not connect fail the start with one message naming each, as `check`
//! lists them.

#![cfg(feature = "epics")]

#[path = "../epics/tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{repeater_port, Ioc};
use serde_json::Value;

/// Runs the binary with `args`, its CA client searching only `iocs`.
fn skyrun(iocs: &[&Ioc], args: &[&str]) -> Output {
    let addrs: Vec<String> = iocs.iter().map(|i| i.addr().to_string()).collect();
    Command::new(env!("CARGO_BIN_EXE_skyrun"))
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("TRACEPARENT")
        .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
        .env("EPICS_CA_ADDR_LIST", addrs.join(" "))
        .env("EPICS_CA_REPEATER_PORT", repeater_port().to_string())
        .output()
        .expect("the skyrun binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-epics-{}", std::process::id()))
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, body).expect("write");
    p.display().to_string()
}

fn documents(path: &Path) -> Vec<(String, Value)> {
    fs::read_to_string(path)
        .expect("documents file")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            (v[0].as_str().unwrap().to_owned(), v[1].clone())
        })
        .collect()
}

#[test]
fn a_scan_from_a_device_file_moves_the_epics_motor_and_reads_the_signals() {
    let motors = Ioc::motors(2, &["--velocity", "20"]);
    let signals = Ioc::signals(3);
    let dir = tmpdir("scan");
    let devices = write(
        &dir,
        "beamline.toml",
        &format!(
            r#"
[[epics_motor_family]]
prefix = "m"
count = 2
first = 1
pv = "{m}:MTR{{i}}"
timeout = 30.0

[[epics_signal]]
name = "tick"
read_pv = "{s}:TICK"
read_only = true

[[epics_signal_family]]
prefix = "ao"
count = 3
read_pv = "ca://{s}:AO:{{i:05}}"
read_only = true
"#,
            m = motors.prefix,
            s = signals.prefix
        ),
    );
    let plan = write(
        &dir,
        "scan.toml",
        "[plan]\nname = 'scan'\ndetectors = ['tick', 'ao']\nmotor = 'm2'\nstart = -1\nstop = 1\nnum = 5\n",
    );
    let docs = dir.join("docs.jsonl");

    let check = skyrun(
        &[&motors, &signals],
        &["check", &plan, "--devices", &devices],
    );
    let out = text(&check.stdout);
    assert!(check.status.success(), "{out}\n{}", text(&check.stderr));
    // 2 motors x 15 fields + 4 signals.
    assert!(out.contains("epics:       34 PVs connected"), "{out}");
    assert!(
        out.contains("detectors:   tick, ao0..ao2 (family 'ao', 3)"),
        "{out}"
    );

    let run = skyrun(
        &[&motors, &signals],
        &[
            "run",
            &plan,
            "--devices",
            &devices,
            "--quiet",
            "--documents",
            docs.to_str().unwrap(),
        ],
    );
    assert!(
        run.status.success(),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let docs = documents(&docs);
    let positions: Vec<f64> = docs
        .iter()
        .filter(|(n, _)| n == "event")
        .map(|(_, e)| e["data"]["m2"].as_f64().expect("m2 in each event"))
        .collect();
    assert_eq!(positions, [-1.0, -0.5, 0.0, 0.5, 1.0]);
    let (_, desc) = docs.iter().find(|(n, _)| n == "descriptor").unwrap();
    let keys = &desc["data_keys"];
    assert_eq!(
        keys["m2"]["source"],
        format!("PV:{}:MTR2.RBV", motors.prefix)
    );
    assert_eq!(
        keys["ao2"]["source"],
        format!("PV:{}:AO:00002", signals.prefix)
    );
    assert_eq!(keys["ao2"]["units"], "mm");
    let (_, stop) = docs.last().unwrap();
    assert_eq!(stop["exit_status"], "success");
}

#[test]
fn pvs_that_do_not_connect_fail_the_start_naming_each_and_check_lists_them() {
    let signals = Ioc::signals(2);
    let dir = tmpdir("missing");
    let devices = write(
        &dir,
        "beamline.toml",
        &format!(
            r#"
[[epics_signal_family]]
prefix = "s"
count = 4
read_pv = "{s}:AO:{{i:05}}"
read_only = true

[[epics_signal]]
name = "gain"
read_pv = "{s}:GAIN:RBV"
write_pv = "{s}:AO:00000"
"#,
            s = signals.prefix
        ),
    );
    let plan = write(
        &dir,
        "count.toml",
        "[plan]\nname = 'count'\ndetectors = ['s']\nnum = 1\n",
    );
    let args = [
        "run",
        &plan,
        "--devices",
        &devices,
        "--quiet",
        "--connect-timeout",
        "1",
    ];
    let run = skyrun(&[&signals], &args);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    let p = &signals.prefix;
    let expected = format!(
        "3 PVs did not connect within 1 s: {p}:GAIN:RBV (gain), {p}:AO:00002 (s2), {p}:AO:00003 (s3)"
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains(":AO:00001 "), "{err}");

    let check = skyrun(
        &[&signals],
        &[
            "check",
            &plan,
            "--devices",
            &devices,
            "--connect-timeout",
            "1",
        ],
    );
    let err = text(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{err}");
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("1 problem found before running"), "{err}");
}
