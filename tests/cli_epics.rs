//! `skyrun run` and `skyrun check` on a device file of EPICS devices, against
//! real IOCs started here (a caproto motor-record IOC and a pythonSoftIOC,
//! from `epics/tests/iocs`): a scan of an EPICS motor from a family records
//! the positions it asked for, reading signals of a `{i:05}` family; PVs that
//! do not connect fail the start with one message naming each, as `check`
//! lists them; `pva://` PVs go over PVAccess (pvxs) next to CA ones.

#![cfg(feature = "epics")]

#[path = "../epics/tests/common/mod.rs"]
mod common;
mod process;
mod remote_support;

use std::process::Output;

use common::{repeater_port, Ioc};
use remote_support::{documents, run_skyrun, TempDir};

/// Runs the binary with `args` (bounded), its CA client searching only `iocs`.
fn skyrun(iocs: &[&Ioc], args: &[&str]) -> Output {
    let addrs: Vec<String> = iocs.iter().map(|i| i.addr().to_string()).collect();
    let (addrs, repeater) = (addrs.join(" "), repeater_port().to_string());
    let env = [
        ("EPICS_CA_AUTO_ADDR_LIST", "NO"),
        ("EPICS_CA_ADDR_LIST", addrs.as_str()),
        ("EPICS_CA_REPEATER_PORT", repeater.as_str()),
    ];
    run_skyrun(args, &env)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_scan_from_a_device_file_moves_the_epics_motor_and_reads_the_signals() {
    let motors = Ioc::motors(2, &["--velocity", "20"]);
    let signals = Ioc::signals(3);
    let dir = TempDir::new("cli-epics-scan");
    let devices = dir
        .write(
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
        )
        .display()
        .to_string();
    let plan = dir.write(
        "scan.toml",
        "[plan]\nname = 'scan'\ndetectors = ['tick', 'ao']\nmotor = 'm2'\nstart = -1\nstop = 1\nnum = 5\n",
    )
    .display()
    .to_string();
    let docs = dir.path("docs.jsonl");

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
    let dir = TempDir::new("cli-epics-missing");
    let devices = dir
        .write(
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
        )
        .display()
        .to_string();
    let plan = dir
        .write(
            "count.toml",
            "[plan]\nname = 'count'\ndetectors = ['s']\nnum = 1\n",
        )
        .display()
        .to_string();
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

#[test]
fn pva_pvs_of_a_device_file_go_over_pvaccess_next_to_channel_access_ones() {
    let signals = Ioc::signals_pva(2);
    let dir = TempDir::new("cli-epics-pva");
    let devices = dir
        .write(
            "beamline.toml",
            &format!(
                "[[epics_signal]]\nname = 'ao'\nread_pv = 'pva://{s}:AO:00001'\nread_only = true\n\
                 [[epics_signal]]\nname = 'tick'\nread_pv = 'ca://{s}:TICK'\nread_only = true\n",
                s = signals.prefix
            ),
        )
        .display()
        .to_string();
    let plan = dir
        .write(
            "count.toml",
            "[plan]\nname = 'count'\ndetectors = ['ao', 'tick']\nnum = 2\n",
        )
        .display()
        .to_string();
    let docs = dir.path("docs.jsonl");
    let (addr, repeater) = (signals.addr().to_string(), repeater_port().to_string());
    let pva = format!("127.0.0.1:{}", signals.pva_port.unwrap());
    let env = [
        ("EPICS_CA_AUTO_ADDR_LIST", "NO"),
        ("EPICS_CA_ADDR_LIST", addr.as_str()),
        ("EPICS_CA_REPEATER_PORT", repeater.as_str()),
        ("EPICS_PVA_AUTO_ADDR_LIST", "NO"),
        ("EPICS_PVA_ADDR_LIST", ""),
        ("EPICS_PVA_NAME_SERVERS", pva.as_str()),
    ];
    let args = [
        "run",
        &plan,
        "--devices",
        &devices,
        "--quiet",
        "--connect-timeout",
        "10",
        "--documents",
        docs.to_str().unwrap(),
    ];
    let run = run_skyrun(&args, &env);
    assert!(
        run.status.success(),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let docs = documents(&docs);
    let (_, desc) = docs.iter().find(|(n, _)| n == "descriptor").unwrap();
    let keys = &desc["data_keys"];
    assert_eq!(
        keys["ao"]["source"],
        format!("PV:pva://{}:AO:00001", signals.prefix)
    );
    assert_eq!(keys["ao"]["units"], "mm");
    assert_eq!(
        keys["tick"]["source"],
        format!("PV:{}:TICK", signals.prefix)
    );
    let events: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|(n, _)| n == "event")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(events.len(), 2);
    for e in events {
        assert_eq!(e["data"]["ao"], 0.0, "{e}");
        assert!(e["timestamps"]["ao"].as_f64().unwrap() > 1.7e9, "{e}");
    }
}
