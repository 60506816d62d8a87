//! `skyrun bench --scenario epics` against real IOCs started here (a
//! pythonSoftIOC and a caproto motor-record IOC), small: every figure is one
//! line of the one bench schema ([`BenchLine`]), with the case, the devices
//! and operations asked for and the PVs it used (never the timings' values);
//! bad options are refused naming the option.

#![cfg(feature = "epics")]

#[path = "../epics/tests/common/mod.rs"]
mod common;
mod process;

use common::{repeater_port, Ioc};
use process::skyrun_env;
use skyrun::bench::{BenchLine, Devices};

#[test]
fn the_epics_scenario_writes_one_bench_line_per_figure() {
    let signals = Ioc::signals(12);
    let motors = Ioc::motors(3, &["--velocity", "1000"]);
    let pv = format!("ca://{}:AO:{{i:05}}", signals.prefix);
    let motor = format!("{}:MTR{{i}}", motors.prefix);
    let addrs = format!("{},{}", signals.addr(), motors.addr());
    let repeater = repeater_port().to_string();
    let env = [
        ("EPICS_CA_AUTO_ADDR_LIST", "NO"),
        ("EPICS_CA_ADDR_LIST", ""),
        ("EPICS_CA_REPEATER_PORT", repeater.as_str()),
    ];
    let args = [
        "bench",
        "--scenario",
        "epics",
        "--pv",
        &pv,
        "--pvs",
        "5,12",
        "--messages",
        "20",
        "--repeat",
        "1",
        "--motor",
        &motor,
        "--motors",
        "3",
        "--moves",
        "3",
        "--ca-addr",
        &addrs,
        "--json",
    ];
    let out = skyrun_env(&args, &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<BenchLine> = stdout
        .lines()
        .map(|l| BenchLine::parse(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let cases: Vec<&str> = lines.iter().filter_map(|l| l.case.as_deref()).collect();
    assert_eq!(
        cases,
        [
            "connect, bare client",
            "connect, devices",
            "connect, bare client",
            "connect, devices",
            "put-with-completion, bare client",
            "set+wait, EpicsSignal put_complete",
            "count, EpicsSignalRO",
            "group move, EpicsMotor",
        ],
        "{stdout}"
    );
    let expect = [
        (5, 5),
        (5, 5),
        (12, 12),
        (12, 12),
        (1, 20),
        (1, 20),
        (1, 20),
        (3, 3),
    ];
    for (line, (devices, messages)) in lines.iter().zip(expect) {
        assert_eq!(line.scenario, "epics", "{line:?}");
        assert_eq!(line.trace.as_deref(), Some("off"), "{line:?}");
        assert_eq!(line.devices, Some(Devices::Count(devices)), "{line:?}");
        assert_eq!(line.messages, Some(messages), "{line:?}");
        let (s, rate) = (line.seconds.unwrap(), line.per_second.unwrap());
        assert!(s > 0.0, "{line:?}");
        assert!(
            (rate - messages as f64 / s).abs() <= 1e-9 * rate,
            "per_second is operations / seconds: {line:?}"
        );
    }
    let detail = |i: usize, key: &str| lines[i].details[key].clone();
    assert_eq!(detail(0, "pv"), pv.as_str());
    assert!(detail(1, "limit_seconds").as_f64().unwrap() > 0.0);
    assert_eq!(detail(4, "pv"), signals.pv("AO:00000").as_str());
    let ratio = detail(5, "ratio").as_f64().unwrap();
    let limit = detail(5, "limit_per_second").as_f64().unwrap();
    assert!(
        (ratio - lines[5].per_second.unwrap() / limit).abs() <= 1e-9 * ratio,
        "ratio is set+wait / the bare client's rate: {:?}",
        lines[5]
    );
    assert_eq!(detail(6, "pv"), signals.pv("AO:00001").as_str());
    assert_eq!(detail(7, "pv"), motor.as_str());
    for key in ["move_median_s", "move_best_s", "connect_seconds"] {
        assert!(
            detail(7, key).as_f64().unwrap() > 0.0,
            "{key}: {:?}",
            lines[7]
        );
    }
}

#[test]
fn bad_options_and_missing_pvs_are_refused_naming_them() {
    let refused = |args: &[&str]| {
        let mut all = vec!["bench", "--scenario", "epics"];
        all.extend_from_slice(args);
        let out = skyrun_env(&all, &[("EPICS_CA_AUTO_ADDR_LIST", "NO")]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = refused(&["--pv", "BL:{j}"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--pv: unknown placeholder '{j}'"), "{err}");
    let (code, err) = refused(&["--pvs", "10,x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--pvs: 'x' is not a number"), "{err}");
    let (code, err) = refused(&["--pv", "pva://BL:{i}"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--pv: the epics scenario measures Channel Access"),
        "{err}"
    );
    let (code, err) = refused(&["--ca-addr", "ioc"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--ca-addr: 'ioc' is not an address"), "{err}");

    // No IOC serves these: the run fails (exit 1) naming the PVs.
    let port = common::free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    repeater_port();
    let (code, err) = refused(&[
        "--pv",
        "NOWHERE:{i}",
        "--pvs",
        "2",
        "--ca-addr",
        &addr,
        "--pv-timeout",
        "0.5",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("NOWHERE:0"), "{err}");
}
