//! Unit tests of the device and plan file parsers: every error names the
//! right line and column and says what is wrong.

use super::*;

const DEVICES: &str = r#"
[[motor]]
name = "motor"
velocity = 10.0
limits = [-5, 5]

[[motor_family]]
prefix = "m"
count = 4

[[detector]]
name = "det"
motor = "motor"
noise = "uniform"
noise_multiplier = 0.5

[[detector_family]]
prefix = "d"
count = 3
motor_family = "m"

[[signal]]
name = "temp"
value = 21.5

[[flyer]]
name = "flyer"
num_points = 7
"#;

fn devices() -> DeviceSet {
    DeviceSet::parse(DEVICES, "dev.toml").unwrap()
}

fn dev_err(text: &str) -> String {
    DeviceSet::parse(text, "dev.toml").unwrap_err().to_string()
}

fn plan_err(text: &str) -> String {
    match PlanFile::parse(text, "plan.toml") {
        Err(e) => e.to_string(),
        Ok(p) => p.check(&devices()).unwrap_err().to_string(),
    }
}

#[test]
fn parses_all_kinds_and_families() {
    let set = devices();
    let names: Vec<&str> = set.names().collect();
    assert_eq!(
        names,
        ["motor", "m0", "m1", "m2", "m3", "det", "d0", "d1", "d2", "temp", "flyer"]
    );
    match &set.get("d2").unwrap().config {
        DeviceConfig::Detector(c) => assert_eq!(c.motor, "m2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(set.get("m3").unwrap().line, 7);
    assert_eq!(set.counts()[0], (DeviceKind::Motor, 5));
}

#[test]
fn device_file_errors() {
    let cases: &[(&str, &str)] = &[
        ("[[motor]]\nname = 'a'\nvelocty = 1\n", "dev.toml:3:1: unknown key 'velocty' (did you mean 'velocity'?); expected one of: name, prefix"),
        ("[[motor]]\nname = 'a'\nvelocity = 'fast'\n", "dev.toml:3:12: invalid type: string \"fast\", expected a number"),
        ("[[motor]]\nname = 'a'\n[[motor]]\nname = 'a'\n", "dev.toml:4:8: duplicate device name 'a' (first declared at line 1)"),
        ("[[motor]]\nname = 'm1'\n[[motor_family]]\nprefix = 'm'\ncount = 3\n", "dev.toml:4:10: duplicate device name 'm1' (first declared at line 1)"),
        ("[[motor]]\nvelocity = 1\n", "dev.toml:1:1: [[motor]] is missing argument 'name'"),
        ("[[motor]]\nname = 'a'\nposition = nan\n", "dev.toml:3:12: 'position' of [[motor]] must be a finite number, got NaN"),
        ("[[motor]]\nname = 'a'\nvelocity = -inf\n", "dev.toml:3:12: 'velocity' of [[motor]] must be a finite number, got -inf"),
        ("[[motor]]\nname = 'a'\nsettle_time = -1\n", "dev.toml:3:15: 'settle_time' of [[motor]] must not be negative, got -1"),
        ("[[motor_family]]\nprefix = 'm'\ncount = -3\n", "dev.toml:3:9: 'count' of [[motor_family]] must not be negative, got -3"),
        ("[[motor_family]]\nprefix = 'm'\ncount = 2000000\n", "dev.toml:3:9: 'count' of [[motor_family]] is 2000000, more than the limit of 1000000"),
        ("[[motor]]\nname = 'a'\ncount = 3\n", "dev.toml:3:9: key 'count' is not used in [[motor]] (to declare many, use [[motor_family]])"),
        ("[[detector]]\nname = 'd'\nmotor = 'mtr'\n[[motor]]\nname = 'motor'\n", "dev.toml:3:9: unknown device 'mtr' (did you mean 'motor'? known: motor)"),
        ("[[detector]]\nname = 'd'\n", "dev.toml:1:1: [[detector]] is missing argument 'motor'"),
        ("[[signal]]\nname = 's'\n[[detector]]\nname = 'd'\nmotor = 's'\n", "dev.toml:5:9: device 's' is a signal, but the 'motor' of [[detector]] must be a motor"),
        ("[[motor]]\nname = 'a'\n[[detector]]\nname = 'd'\nmotor = 'a'\nnoise = 'gauss'\n", "dev.toml:6:9: unknown noise 'gauss' (known: none, poisson, uniform)"),
        ("[[flyer]]\nname = 'f'\nnum_points = 100000000\n", "dev.toml:3:14: 'num_points' of [[flyer]] is 100000000, more than the limit of 10000000"),
        ("[[flyer]]\nname = 'f'\n", "dev.toml:1:1: [[flyer]] is missing argument 'num_points'"),
        ("[[motor]]\nname = 'a b'\n", "dev.toml:2:8: invalid device name 'a b': use letters, digits, '_' and '-'"),
        ("[[motor]]\nname = 'a'\nlimits = [1]\n", "dev.toml:3:10: 'limits' must be [low, high], got 1 numbers"),
        ("[[motor_family]]\nprefix = 'm'\ncount = 2\n[[detector_family]]\nprefix = 'd'\ncount = 3\nmotor_family = 'm'\n", "dev.toml:7:16: motor family 'm' has 2 motors, fewer than the 3 detectors bound to it by index"),
        ("[motor]\nname = 'a'\n", "dev.toml:1:1: invalid type: table, expected an array"),
        ("[[motor]\nname = 'a'\n", "dev.toml:1:"),
    ];
    for (text, want) in cases {
        let got = dev_err(text);
        assert!(
            got.starts_with(want),
            "for {text:?}:\n got: {got}\nwant: {want}"
        );
    }
}

const SCAN: &str =
    "[plan]\nname = 'scan'\ndetectors = ['det']\nmotor = 'motor'\nstart = -1\nstop = 1\nnum = 5\n";

#[test]
fn plan_file_checks() {
    let plan = PlanFile::parse(SCAN, "plan.toml").unwrap();
    let s = plan.check(&devices()).unwrap();
    assert_eq!((s.plan.as_str(), s.num_points, s.runs), ("scan", 5, 1));
    assert_eq!(s.detectors, ["det"]);
    assert_eq!(s.motors, ["motor"]);
    assert_eq!(
        s.description,
        ["scan [det] over motor from -1 to 1 in 5 points"]
    );

    let grid = "[plan]\nname = 'grid_scan'\ndetectors = ['d0']\nsnake = true\naxes = [{motor = 'm0', start = 0, stop = 1, num = 3}, {motor = 'm1', start = 0, stop = 1, num = 4}]\n";
    assert_eq!(
        PlanFile::parse(grid, "g.toml")
            .unwrap()
            .check(&devices())
            .unwrap()
            .num_points,
        12
    );
    let fly = "[plan]\nname = 'fly'\nflyers = ['flyer']\n";
    assert_eq!(
        PlanFile::parse(fly, "f.toml")
            .unwrap()
            .check(&devices())
            .unwrap()
            .num_points,
        7
    );
}

#[test]
fn plan_file_errors() {
    let cases: &[(&str, &str)] = &[
        (&SCAN.replace("'motor'", "'mtr'"), "plan.toml:4:9: unknown device 'mtr' (did you mean 'motor'? motors: motor, m0..m3 (family 'm', 4))"),
        (&SCAN.replace("start = -1", "start = 'a'"), "plan.toml:5:9: invalid type: string \"a\", expected a number"),
        (&SCAN.replace("num = 5\n", ""), "plan.toml:1:1: plan 'scan' is missing argument 'num'"),
        (&SCAN.replace("num = 5", "num = -5"), "plan.toml:7:7: 'num' of plan 'scan' must not be negative, got -5"),
        (&SCAN.replace("num = 5", "num = 50000000"), "plan.toml:7:7: 'num' of plan 'scan' is 50000000, more than the limit of 10000000"),
        (&SCAN.replace("stop = 1", "stop = nan"), "plan.toml:6:8: 'stop' of plan 'scan' must be a finite number, got NaN"),
        (&SCAN.replace("stop = 1", "stpo = 1"), "plan.toml:6:1: unknown key 'stpo' (did you mean 'stop'?)"),
        (&SCAN.replace("num = 5", "num = 5\ndelay = 1"), "plan.toml:8:9: argument 'delay' is not used by plan 'scan' (it takes: detectors, motor, start, stop, num)"),
        (&SCAN.replace("'scan'", "'scna'"), "plan.toml:2:8: unknown plan 'scna' (known: count, scan"),
        (&SCAN.replace("['det']", "['flyer']"), "plan.toml:3:14: device 'flyer' is a flyer, but a detector of plan 'scan' must be a motor or detector"),
        (&SCAN.replace("['det']", "['temp']"), "plan.toml:3:14: device 'temp' is a signal, but a detector of plan 'scan' must be a motor or detector (standard plans stage"),
        (&SCAN.replace("'motor'", "'det'"), "plan.toml:4:9: device 'det' is a detector, but the motor of plan 'scan' must be a motor"),
        ("[plan]\nname = 'count'\ndetectors = ['det']\nnum = 3\n[metadata]\nx = nan\n", "plan.toml:6:5: metadata 'x' must be a finite number, got NaN"),
        ("[plan]\nname = 'count'\ndetectors = ['det']\nnum = 3\n[metadata]\nx = { y = [1.0, inf] }\n", "plan.toml:6:5: metadata 'x'.y[1] must be a finite number, got inf"),
        ("[plan]\nname = 'grid_scan'\ndetectors = []\naxes = [{motor = 'm0', start = 0, stop = 1, num = 10000}, {motor = 'm1', start = 0, stop = 1, num = 10000}]\n", "plan.toml:4:8: the number of grid points is 100000000, more than the limit of 10000000"),
        ("[plan]\nname = 'grid_scan'\ndetectors = []\naxes = [{motor = 'm0', start = 0, stop = 1}]\n", "plan.toml:4:9: axis 1 of plan 'grid_scan' is missing argument 'num'"),
        ("[plan]\nname = 'count'\ndetectors = []\n", "plan.toml:3:13: 'detectors' of plan 'count' must name at least one device"),
        ("[metadata]\nx = 1\n", "plan.toml: the plan file has neither a [plan] table nor [[steps]]"),
        ("devices = 3\n[plan]\nname = 'fly'\nflyers = ['flyer']\n", "plan.toml:1:11: invalid type: integer `3`, expected a string"),
    ];
    for (text, want) in cases {
        let got = plan_err(text);
        assert!(
            got.starts_with(want),
            "for {text:?}:\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn steps_parse_and_check() {
    let text = r#"
[[steps]]
stub = "mv"
motors = ["m0", "m1"]
positions = [1, 2]

[[steps]]
stub = "open_run"
md = { purpose = "test" }

[[steps]]
stub = "trigger_and_read"
detectors = ["det", "temp"]

[[steps]]
stub = "close_run"

[[steps]]
stub = "count"
detectors = ["det"]
num = 3
"#;
    let plan = PlanFile::parse(text, "steps.toml").unwrap();
    let s = plan.check(&devices()).unwrap();
    assert_eq!((s.num_points, s.runs), (4, 2));
    assert_eq!(s.description[0], "  1. mv m0 to 1, m1 to 2");
    assert_eq!(s.motors, ["m0", "m1"]);
}

#[test]
fn step_errors() {
    let cases: &[(&str, &str)] = &[
        ("[[steps]]\nstub = 'mvv'\n", "plan.toml:2:8: unknown stub 'mvv' (known: null, checkpoint"),
        ("[[steps]]\nname = 'mv'\n", "plan.toml:2:8: a step takes 'stub', not 'name'"),
        ("[[steps]]\nstub = 'mv'\nmotor = 'motor'\n", "plan.toml:1:1: step 1 'mv' is missing argument 'position'"),
        ("[[steps]]\nstub = 'sleep'\nseconds = -1\n", "plan.toml:3:11: 'seconds' of step 1 'sleep' must not be negative, got -1"),
        ("[[steps]]\nstub = 'trigger_and_read'\ndetectors = ['det']\n", "plan.toml:1:1: step 1 (trigger_and_read) needs an open run"),
        ("[[steps]]\nstub = 'open_run'\n", "plan.toml:1:1: the run opened by step 1 is never closed"),
        ("[[steps]]\nstub = 'close_run'\n", "plan.toml:1:1: step 1 (close_run) closes no run"),
        ("[[steps]]\nstub = 'open_run'\n[[steps]]\nstub = 'count'\ndetectors = ['det']\n[[steps]]\nstub = 'close_run'\n", "plan.toml:3:1: step 2 (count) opens its own run while the run opened by step 1 is still open"),
        ("[[steps]]\nstub = 'abs_set'\ndevice = 'motor'\nvalue = 'far'\n", "plan.toml:4:9: the value for motor 'motor' must be a number, got \"far\""),
        ("[[steps]]\nstub = 'mv'\nmotors = ['m0']\npositions = [1, 2]\n", "plan.toml:4:13: 'positions' has 2 numbers for 1 motor (m0)"),
        ("[[steps]]\nstub = 'checkpoint'\nseconds = 1\n", "plan.toml:3:11: argument 'seconds' is not used by step 1 'checkpoint' (it takes: nothing)"),
        ("[[steps]]\nstub = 'trigger'\ndevice = 'motor'\n", "plan.toml:3:10: device 'motor' is a motor, but the device of step 1 'trigger' must be triggerable"),
        ("steps = []\n", "plan.toml:1:9: [[steps]] lists no step"),
    ];
    for (text, want) in cases {
        let got = plan_err(text);
        assert!(
            got.starts_with(want),
            "for {text:?}:\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn plans_run_on_spawned_devices() {
    use crate::{Document, RunEngine};
    use skyrun_actors::SpanTracer;
    use std::sync::{Arc, Mutex};
    let set = devices();
    let text = "[[steps]]\nstub = 'mvr'\nmotor = 'motor'\nposition = 1\n[[steps]]\nstub = 'rel_scan'\ndetectors = ['det']\nmotor = 'motor'\nstart = -1\nstop = 1\nnum = 3\n[metadata]\nsample = 'Si'\n";
    let plan = PlanFile::parse(text, "p.toml").unwrap();
    actix::System::new().block_on(async {
        let devs = set.spawn(SpanTracer::disabled());
        let built = plan.build(&set, &devs).unwrap();
        let re = RunEngine::new();
        let docs = Arc::new(Mutex::new(Vec::new()));
        let d = docs.clone();
        re.subscribe(move |_, doc| d.lock().unwrap().push(doc.clone()));
        re.run(built.plan).await.unwrap();
        let docs = docs.lock().unwrap();
        let Document::Start(start) = &docs[0] else {
            panic!("{:?}", docs[0])
        };
        assert_eq!(start.metadata["sample"], "Si");
        assert_eq!(start.metadata["plan_name"], "rel_scan");
        let xs: Vec<f64> = docs
            .iter()
            .filter_map(|d| match d {
                Document::Event(e) => e.data["motor"].as_f64(),
                _ => None,
            })
            .collect();
        assert_eq!(xs, [0.0, 1.0, 2.0]);
    });
}

/// Truncated and corrupted versions of the shipped examples are refused with
/// an error, never a panic.
#[test]
fn mangled_files_never_panic() {
    let beamline = include_str!("../../examples/beamline.toml");
    let plans = [
        include_str!("../../examples/scan.toml"),
        include_str!("../../examples/grid_scan.toml"),
        include_str!("../../examples/steps.toml"),
    ];
    let set = DeviceSet::parse(beamline, "beamline.toml").unwrap();
    let mangle = |text: &str, f: &mut dyn FnMut(&str)| {
        for (i, ch) in text.char_indices() {
            f(&text[..i]);
            let rest = &text[i + ch.len_utf8()..];
            for c in ["-", "x", "\"", "[", "=", "nan", "1e400"] {
                f(&format!("{}{c}{rest}", &text[..i]));
            }
        }
    };
    mangle(beamline, &mut |t| {
        let _ = DeviceSet::parse(t, "b.toml").map(|s| s.len());
    });
    for plan in plans {
        mangle(plan, &mut |t| {
            if let Ok(p) = PlanFile::parse(t, "p.toml") {
                let _ = p.check(&set);
            }
        });
    }
}
