//! Bad input in plan and device files (issue 7, point 3), one test per kind:
//! unknown keys, wrong types, NaN and infinite positions, negative counts,
//! duplicate device names and huge numbers of points. Each gets the exact
//! error `skyrun::config` gives (`FILE:LINE:COL: what is wrong`), never a
//! panic; the last test checks the binary says the same on one line with
//! exit status 2 for cases `tests/cli.rs` does not cover.
//!
//! Plans are checked against the example beamline (`examples/beamline.toml`),
//! as `skyrun check examples/...` does.

mod process;

use std::fs;
use std::path::Path;

use process::skyrun;
use skyrun::config::{DeviceSet, PlanFile};

const BEAMLINE: &str = include_str!("../examples/beamline.toml");

const SCAN: &str =
    "[plan]\nname = 'scan'\ndetectors = ['det']\nmotor = 'motor'\nstart = -1\nstop = 1\nnum = 5\n";

/// The error `text` gets as a plan file, parsed and checked against the example beamline.
fn plan_error(text: &str) -> String {
    let set = DeviceSet::parse(BEAMLINE, "beamline.toml").expect("the example beamline parses");
    match PlanFile::parse(text, "plan.toml").and_then(|p| p.check(&set)) {
        Ok(s) => panic!("accepted ({} points):\n{text}", s.num_points),
        Err(e) => e.to_string(),
    }
}

/// The error `text` gets as a device file.
fn device_error(text: &str) -> String {
    match DeviceSet::parse(text, "devices.toml") {
        Ok(set) => panic!("accepted ({} devices):\n{text}", set.len()),
        Err(e) => e.to_string(),
    }
}

/// Asserts each plan file gets its error, exactly.
fn plan_cases(cases: &[(&str, &str)]) {
    for (text, want) in cases {
        assert_eq!(plan_error(text), *want, "for the plan file\n{text}");
    }
}

/// Asserts each device file gets its error, exactly.
fn device_cases(cases: &[(&str, &str)]) {
    for (text, want) in cases {
        assert_eq!(device_error(text), *want, "for the device file\n{text}");
    }
}

/// `SCAN` with `from` replaced by `to`.
fn scan(from: &str, to: &str) -> String {
    assert!(SCAN.contains(from), "{from}");
    SCAN.replace(from, to)
}

#[test]
fn unknown_keys() {
    plan_cases(&[
        (&format!("device = 'beamline.toml'\n{SCAN}"), "plan.toml:1:1: unknown key 'device' (did you mean 'devices'?); expected one of: devices, plan, steps, metadata"),
        // Only the keys of the plan at hand, not every key of every plan and stub.
        (&scan("detectors =", "detector ="), "plan.toml:3:1: unknown key 'detector' (did you mean 'detectors'?); plan 'scan' takes: name, detectors, motor, start, stop, num"),
        ("[plan]\nname = 'grid_scan'\ndetectors = ['det']\n[[plan.axes]]\nmotor = 'sample_x'\nstart = 0\nstop = 1\nnm = 3\n", "plan.toml:8:1: unknown key 'nm' (did you mean 'num'?); expected one of: motor, start, stop, num"),
        ("[[steps]]\nstub = 'mv'\nmotor = 'motor'\npositon = 1\n", "plan.toml:4:1: unknown key 'positon' (did you mean 'position'?); step 1 'mv' takes: stub, motor, position, motors, positions"),
        ("[[steps]]\nstub = 'open_run'\n[[steps]]\nstub = 'trigger_and_read'\ndetectors = ['det']\nstrem = 'baseline'\n", "plan.toml:6:1: unknown key 'strem' (did you mean 'stream'?); step 2 'trigger_and_read' takes: stub, detectors, stream"),
        // A key the schema knows, where this plan does not take it.
        (&scan("num = 5", "num = 5\nsnake = true"), "plan.toml:8:9: argument 'snake' is not used by plan 'scan' (it takes: detectors, motor, start, stop, num)"),
    ]);
    device_cases(&[
        ("[[motors]]\nname = 'a'\n", "devices.toml:1:3: unknown key 'motors' (did you mean 'motor'?); expected one of: motor, motor_family, detector, detector_family, signal, flyer, epics_motor, epics_motor_family, epics_signal, epics_signal_family, remote, suspender, seed"),
        ("[[motor]]\nname = 'a'\n[[detector]]\nname = 'd'\nmotor = 'a'\ncentre = 1\n", "devices.toml:6:1: unknown key 'centre' (did you mean 'center'?); expected one of: name, prefix, count, first, motor, motor_family, center, imax, sigma, noise, noise_multiplier, exposure_time, readout_time, dead_time, timeout, latency, faults"),
        ("[[signal]]\nname = 's'\nunit = 'K'\n", "devices.toml:3:1: unknown key 'unit' (did you mean 'units'?); expected one of: name, value, units, timeout, latency, faults"),
        ("[[flyer]]\nname = 'f'\npoints = 3\n", "devices.toml:3:1: unknown key 'points'; expected one of: name, num_points, duration, start, stop"),
    ]);
}

#[test]
fn wrong_types() {
    plan_cases(&[
        (
            &scan("num = 5", "num = 5.0"),
            "plan.toml:7:7: invalid type: floating point `5.0`, expected an integer",
        ),
        (
            &scan("num = 5", "num = 1e10"),
            "plan.toml:7:7: invalid type: floating point `10000000000.0`, expected an integer",
        ),
        (
            &scan("['det']", "3"),
            "plan.toml:3:13: invalid type: integer `3`, expected a device name, family or glob, or an array of them",
        ),
        (
            &scan("'motor'", "3"),
            "plan.toml:4:9: invalid type: integer `3`, expected a string",
        ),
        (
            "[plan]\nname = 'grid_scan'\ndetectors = ['det']\nsnake = 'yes'\naxes = []\n",
            "plan.toml:4:9: invalid type: string \"yes\", expected true or false",
        ),
        (
            &format!("metadata = 'x'\n{SCAN}"),
            "plan.toml:1:12: invalid type: string \"x\", expected a table",
        ),
        // An array of tables where one table goes (serde used to read a
        // struct from it field by field: "expected a string").
        (
            &scan("[plan]", "[[plan]]"),
            "plan.toml:1:1: invalid type: array, expected a table",
        ),
        (
            "[plan]\nname = 'grid_scan'\ndetectors = ['det']\naxes = [[1, 2]]\n",
            "plan.toml:4:9: invalid type: array, expected a table",
        ),
        (
            "steps = [['mv']]\n",
            "plan.toml:1:10: invalid type: array, expected a table",
        ),
    ]);
    device_cases(&[
        ("[[motor]]\nname = 3\n", "devices.toml:2:8: invalid type: integer `3`, expected a string"),
        ("[[motor]]\nname = 'a'\nlimits = 'wide'\n", "devices.toml:3:10: invalid type: string \"wide\", expected an array"),
        ("[[motor_family]]\nprefix = 'm'\ncount = 1.5\n", "devices.toml:3:9: invalid type: floating point `1.5`, expected an integer"),
        ("[[motor]]\nname = 'a'\n[[detector]]\nname = 'd'\nmotor = 'a'\nnoise = 1\n", "devices.toml:6:9: invalid type: integer `1`, expected a string"),
        ("[[signal]]\nname = 's'\nvalue = [1, 2]\n", "devices.toml:3:9: 'value' of [[signal]] must be a number, string or boolean, got an array"),
        ("motor = 'a'\n", "devices.toml:1:9: invalid type: string \"a\", expected an array"),
        ("motor = [['a']]\n", "devices.toml:1:10: invalid type: array, expected a table"),
    ]);
}

#[test]
fn nan_and_infinite_positions() {
    plan_cases(&[
        (&scan("start = -1", "start = inf"), "plan.toml:5:9: 'start' of plan 'scan' must be a finite number, got inf"),
        (&scan("start = -1", "start = -nan"), "plan.toml:5:9: 'start' of plan 'scan' must be a finite number, got NaN"),
        // Too large for a double: the TOML parser refuses it.
        (&scan("start = -1", "start = 1e400"), "plan.toml:5:9: floating-point number overflowed"),
        ("[plan]\nname = 'list_scan'\ndetectors = ['det']\nmotor = 'motor'\npositions = [0, nan]\n", "plan.toml:5:17: 'positions' of plan 'list_scan' must be a finite number, got NaN"),
        ("[plan]\nname = 'grid_scan'\ndetectors = ['det']\n[[plan.axes]]\nmotor = 'sample_x'\nstart = -inf\nstop = 1\nnum = 3\n", "plan.toml:6:9: 'start' of axis 1 of plan 'grid_scan' must be a finite number, got -inf"),
        ("[[steps]]\nstub = 'mv'\nmotor = 'motor'\nposition = nan\n", "plan.toml:4:12: 'position' of step 1 'mv' must be a finite number, got NaN"),
        ("[[steps]]\nstub = 'mvr'\nmotors = ['motor', 'sample_x']\npositions = [1, inf]\n", "plan.toml:4:17: 'positions' of step 1 'mvr' must be a finite number, got inf"),
        ("[[steps]]\nstub = 'abs_set'\ndevice = 'temperature'\nvalue = nan\n", "plan.toml:4:9: 'value' of step 1 'abs_set' must be a finite number, got NaN"),
        (&format!("{SCAN}[metadata]\nx = -inf\n"), "plan.toml:9:5: metadata 'x' must be a finite number, got -inf"),
    ]);
    device_cases(&[
        ("[[motor]]\nname = 'a'\nposition = inf\n", "devices.toml:3:12: 'position' of [[motor]] must be a finite number, got inf"),
        ("[[motor]]\nname = 'a'\nlimits = [-inf, 10]\n", "devices.toml:3:11: 'limits' of [[motor]] must be a finite number, got -inf"),
        ("[[motor]]\nname = 'a'\nlimits = [0, nan]\n", "devices.toml:3:14: 'limits' of [[motor]] must be a finite number, got NaN"),
        ("[[motor]]\nname = 'a'\n[[detector]]\nname = 'd'\nmotor = 'a'\ncenter = nan\n", "devices.toml:6:10: 'center' of [[detector]] must be a finite number, got NaN"),
        ("[[flyer]]\nname = 'f'\nnum_points = 3\nstart = inf\n", "devices.toml:4:9: 'start' of [[flyer]] must be a finite number, got inf"),
        ("[[signal]]\nname = 's'\nvalue = nan\n", "devices.toml:3:9: 'value' of [[signal]] must be a finite number, got NaN"),
        ("[[motor]]\nname = 'a'\nposition = 1e400\n", "devices.toml:3:12: floating-point number overflowed"),
        // Beyond 64 bits, written as an integer.
        ("[[motor]]\nname = 'a'\nposition = 99999999999999999999\n", "devices.toml:3:12: integer 99999999999999999999 is out of range (TOML integers are 64-bit)"),
    ]);
}

#[test]
fn negative_counts() {
    plan_cases(&[
        ("[plan]\nname = 'count'\ndetectors = ['det']\nnum = -1\n", "plan.toml:4:7: 'num' of plan 'count' must not be negative, got -1"),
        ("[plan]\nname = 'count'\ndetectors = ['det']\ndelay = -0.5\n", "plan.toml:4:9: 'delay' of plan 'count' must not be negative, got -0.5"),
        ("[plan]\nname = 'grid_scan'\ndetectors = ['det']\n[[plan.axes]]\nmotor = 'sample_x'\nstart = 0\nstop = 1\nnum = -2\n", "plan.toml:8:7: 'num' of axis 1 of plan 'grid_scan' must not be negative, got -2"),
        ("[[steps]]\nstub = 'wait'\ntimeout = -5\n", "plan.toml:3:11: 'timeout' of step 1 'wait' must not be negative, got -5"),
    ]);
    device_cases(&[
        (
            "[[motor_family]]\nprefix = 'm'\ncount = 3\nfirst = -1\n",
            "devices.toml:4:9: 'first' of [[motor_family]] must not be negative, got -1",
        ),
        (
            "[[motor]]\nname = 'a'\n[[detector_family]]\nprefix = 'd'\ncount = -1\nmotor = 'a'\n",
            "devices.toml:5:9: 'count' of [[detector_family]] must not be negative, got -1",
        ),
        (
            "[[flyer]]\nname = 'f'\nnum_points = -10\n",
            "devices.toml:3:14: 'num_points' of [[flyer]] must not be negative, got -10",
        ),
        (
            "[[flyer]]\nname = 'f'\nnum_points = 3\nduration = -1\n",
            "devices.toml:4:12: 'duration' of [[flyer]] must not be negative, got -1",
        ),
        (
            "[[motor]]\nname = 'a'\n[[detector]]\nname = 'd'\nmotor = 'a'\nexposure_time = -1\n",
            "devices.toml:6:17: 'exposure_time' of [[detector]] must not be negative, got -1",
        ),
        (
            "[[motor]]\nname = 'a'\nvelocity = -1\n",
            "devices.toml:3:12: 'velocity' of [[motor]] must not be negative, got -1",
        ),
        (
            "[[motor]]\nname = 'a'\ntimeout = -1\n",
            "devices.toml:3:11: 'timeout' of [[motor]] must not be negative, got -1",
        ),
    ]);
}

#[test]
fn duplicate_device_names() {
    device_cases(&[
        ("[[motor]]\nname = 'a'\n[[detector]]\nname = 'a'\nmotor = 'a'\n", "devices.toml:4:8: duplicate device name 'a' (first declared at line 1)"),
        ("[[signal]]\nname = 'x'\n[[flyer]]\nname = 'x'\nnum_points = 1\n", "devices.toml:4:8: duplicate device name 'x' (first declared at line 1)"),
        // Families overlap each other, and single devices.
        ("[[motor_family]]\nprefix = 'm'\ncount = 3\n[[motor_family]]\nprefix = 'm'\ncount = 2\nfirst = 2\n", "devices.toml:5:10: duplicate device name 'm2' (first declared at line 1)"),
        ("[[motor]]\nname = 'a'\n[[detector]]\nname = 'd1'\nmotor = 'a'\n[[detector_family]]\nprefix = 'd'\ncount = 3\nmotor = 'a'\n", "devices.toml:7:10: duplicate device name 'd1' (first declared at line 3)"),
    ]);
    // Names are case-sensitive: these are two devices.
    let set = DeviceSet::parse(
        "[[motor]]\nname = 'Det'\n[[motor]]\nname = 'det'\n",
        "d.toml",
    );
    assert_eq!(set.map(|s| s.len()), Ok(2));
}

#[test]
fn huge_numbers_of_points() {
    let grid = |nums: &[u64]| {
        let axes: Vec<String> = nums
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{{ motor = 'm{i}', start = 0, stop = 1, num = {n} }}"))
            .collect();
        format!(
            "[plan]\nname = 'grid_scan'\ndetectors = ['det']\naxes = [{}]\n",
            axes.join(", ")
        )
    };
    let count =
        |num: &str| format!("[[steps]]\nstub = 'count'\ndetectors = ['det']\nnum = {num}\n");
    plan_cases(&[
        (&scan("num = 5", "num = 10000001"), "plan.toml:7:7: 'num' of plan 'scan' is 10000001, more than the limit of 10000000"),
        (&scan("num = 5", "num = 9223372036854775807"), "plan.toml:7:7: 'num' of plan 'scan' is 9223372036854775807, more than the limit of 10000000"),
        (&scan("num = 5", "num = 9223372036854775808"), "plan.toml:7:7: integer 9223372036854775808 is out of range (TOML integers are 64-bit)"),
        (&scan("num = 5", "num = -9223372036854775809"), "plan.toml:7:7: integer -9223372036854775809 is out of range (TOML integers are 64-bit)"),
        (&grid(&[1000, 1000, 1000]), "plan.toml:4:8: the number of grid points is 1000000000, more than the limit of 10000000"),
        // The product overflows 128 bits: it saturates, still refused.
        (&grid(&[10_000_000; 6]), "plan.toml:4:8: the number of grid points is 340282366920938463463374607431768211455, more than the limit of 10000000"),
        // Each step within the limit, not all of them together.
        (&format!("{}{}", count("6000000"), count("5000000")), "plan.toml:5:1: the number of points up to step 2 is 11000000, more than the limit of 10000000"),
    ]);
    // Flyers within the limit, not all of them together.
    let flyers = "[[flyer]]\nname = 'f1'\nnum_points = 6000000\n[[flyer]]\nname = 'f2'\nnum_points = 6000000\n";
    let set = DeviceSet::parse(flyers, "devices.toml").unwrap();
    let fly =
        PlanFile::parse("[plan]\nname = 'fly'\nflyers = ['f1', 'f2']\n", "plan.toml").unwrap();
    assert_eq!(
        fly.check(&set).unwrap_err().to_string(),
        "plan.toml:3:11: the number of points of plan 'fly' is 12000000, more than the limit of 10000000"
    );
    // At the limit is fine.
    let at_limit = format!("{}{}", count("6000000"), count("4000000"));
    let set = DeviceSet::parse(BEAMLINE, "beamline.toml").unwrap();
    let summary = PlanFile::parse(&at_limit, "plan.toml")
        .unwrap()
        .check(&set)
        .unwrap();
    assert_eq!(summary.num_points, 10_000_000);
    device_cases(&[
        ("[[flyer]]\nname = 'f'\nnum_points = 10000001\n", "devices.toml:3:14: 'num_points' of [[flyer]] is 10000001, more than the limit of 10000000"),
        ("[[motor_family]]\nprefix = 'm'\ncount = 1000001\n", "devices.toml:3:9: 'count' of [[motor_family]] is 1000001, more than the limit of 1000000"),
        ("[[motor_family]]\nprefix = 'm'\ncount = 9223372036854775807\n", "devices.toml:3:9: 'count' of [[motor_family]] is 9223372036854775807, more than the limit of 1000000"),
        ("[[motor_family]]\nprefix = 'm'\ncount = 3\nfirst = 9223372036854775807\n", "devices.toml:4:9: 'first' of [[motor_family]] is 9223372036854775807, more than the limit of 10000000"),
        // Families within the limit, not all of them together.
        ("[[motor_family]]\nprefix = 'm'\ncount = 600000\n[[motor_family]]\nprefix = 'n'\ncount = 500000\n", "devices.toml:6:9: the number of devices is 1100000, more than the limit of 1000000"),
    ]);
}

/// The binary prints the same errors, on one line, and exits with status 2
/// (cases `tests/cli.rs` does not cover).
#[test]
fn the_binary_reports_bad_input_on_one_line() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config_bad_input");
    fs::create_dir_all(&dir).unwrap();
    let devices = dir.join("beamline.toml");
    fs::write(&devices, BEAMLINE).unwrap();
    let cases = [
        ("array-of-plans", scan("[plan]", "[[plan]]"), "1:1: invalid type: array, expected a table"),
        ("newline-in-name", scan("'motor'", "\"mo\\ntor\""), "4:9: unknown device 'mo\\ntor' (did you mean 'motor'? motors: motor, sample_x, sample_y, m0..m99 (family 'm', 100))"),
        ("steps-too-long", "[[steps]]\nstub = 'count'\ndetectors = ['det']\nnum = 10000000\n[[steps]]\nstub = 'count'\ndetectors = ['det']\n".into(), "5:1: the number of points up to step 2 is 10000001, more than the limit of 10000000"),
    ];
    for (name, text, want) in cases {
        let plan = dir.join(format!("{name}.toml"));
        fs::write(&plan, &text).unwrap();
        let out = skyrun(&[
            "check",
            plan.to_str().unwrap(),
            "--devices",
            devices.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err, format!("error: {}:{want}\n", plan.display()), "{name}");
    }
}
