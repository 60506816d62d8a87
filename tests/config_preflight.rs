//! `PlanFile::problems`: the plans that are valid but doomed, each found
//! before running with the file, line and column of the value at fault:
//! positions past a motor's limits (followed from step to step), plans with
//! no points, flyers without points. And the binary's `check` refusing them.

mod process;

use process::skyrun;
use skyrun::config::{DeviceSet, PlanFile};

const DEVICES: &str = r#"[[motor]]
name = "motor"
position = 2.0
limits = [-10, 10]

[[motor_family]]
prefix = "m"
count = 5
limits = [-1, 1]

[[detector]]
name = "det"
motor = "motor"

[[flyer]]
name = "empty"
num_points = 0

[[flyer]]
name = "flyer"
num_points = 3
"#;

fn problems(text: &str) -> Vec<String> {
    let set = DeviceSet::parse(DEVICES, "dev.toml").unwrap();
    let plan = PlanFile::parse(text, "plan.toml").unwrap_or_else(|e| panic!("{e}"));
    plan.check(&set).unwrap_or_else(|e| panic!("check: {e}"));
    plan.problems(&set)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn one(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}\n{text}");
    p[0].clone()
}

const SCAN: &str =
    "[plan]\nname = 'scan'\ndetectors = ['det']\nmotor = 'motor'\nstart = 0\nstop = 5\nnum = 5\n";

#[test]
fn a_plan_within_the_limits_has_no_problem() {
    assert_eq!(problems(SCAN), Vec::<String>::new());
    assert_eq!(
        problems("[[steps]]\nstub = 'mv'\nmotors = 'm'\nposition = 1\n[[steps]]\nstub = 'fly'\nflyers = ['flyer']\n"),
        Vec::<String>::new()
    );
}

#[test]
fn positions_past_the_limits() {
    assert_eq!(
        one(&SCAN.replace("stop = 5", "stop = 50")),
        "plan.toml:6:8: stop = 50 is outside the limits [-10, 10] of motor 'motor' (dev.toml:1): plan 'scan' would fail when it moves there"
    );
    // rel_scan: from the motor's position in the device file (2).
    assert_eq!(
        one(&SCAN.replace("'scan'", "'rel_scan'").replace("stop = 5", "stop = 9")),
        "plan.toml:6:8: stop = 9 (position 11, from the motor's 2) is outside the limits [-10, 10] of motor 'motor' (dev.toml:1): plan 'rel_scan' would fail when it moves there"
    );
    assert_eq!(
        one("[plan]\nname = 'list_scan'\ndetectors = ['det']\nmotor = 'motor'\npositions = [1, 2, -11]\n"),
        "plan.toml:5:20: position -11 is outside the limits [-10, 10] of motor 'motor' (dev.toml:1): plan 'list_scan' would fail when it moves there"
    );
    assert_eq!(
        one("[plan]\nname = 'grid_scan'\ndetectors = ['det']\n[[plan.axes]]\nmotor = 'm0'\nstart = -2\nstop = 1\nnum = 3\n"),
        "plan.toml:6:9: start = -2 is outside the limits [-1, 1] of motor 'm0' (dev.toml:6): plan 'grid_scan' would fail when it moves there"
    );
}

#[test]
fn steps_follow_the_motors_positions() {
    // mv to 8, then mvr by 3: 11, past 10.
    assert_eq!(
        one("[[steps]]\nstub = 'mv'\nmotor = 'motor'\nposition = 8\n[[steps]]\nstub = 'mvr'\nmotor = 'motor'\nposition = 3\n"),
        "plan.toml:8:12: moving 'motor' by 3 (to 11) is outside the limits [-10, 10] of motor 'motor' (dev.toml:1): step 2 would fail when it moves there"
    );
    assert_eq!(
        one("[[steps]]\nstub = 'abs_set'\ndevice = 'motor'\nvalue = -12.5\n"),
        "plan.toml:4:9: value = -12.5 is outside the limits [-10, 10] of motor 'motor' (dev.toml:1): step 1 would fail when it moves there"
    );
    // A family moved past its limits is said once, naming the others.
    assert_eq!(
        one("[[steps]]\nstub = 'mv'\nmotors = 'm'\nposition = 2\n"),
        "plan.toml:4:12: position 2 for 'm0' is outside the limits [-1, 1] of motor 'm0' (dev.toml:6): step 1 would fail when it moves there (and so would 4 more: m1..m4 (family 'm', 4))"
    );
}

#[test]
fn plans_without_points() {
    assert_eq!(
        one(&SCAN.replace("num = 5", "num = 0")),
        "plan.toml:7:7: num = 0: plan 'scan' would fail at once, with no points to visit"
    );
    assert_eq!(
        one("[plan]\nname = 'count'\ndetectors = ['det']\nnum = 0\n"),
        "plan.toml:4:7: num = 0: plan 'count' would fail at once (it needs at least 1 reading)"
    );
    assert_eq!(
        one("[plan]\nname = 'list_scan'\ndetectors = ['det']\nmotor = 'motor'\npositions = []\n"),
        "plan.toml:5:13: positions = []: plan 'list_scan' would fail at once, with no points to visit"
    );
    assert_eq!(
        one("[plan]\nname = 'grid_scan'\ndetectors = ['det']\n[[plan.axes]]\nmotor = 'motor'\nstart = 0\nstop = 1\nnum = 0\n"),
        "plan.toml:8:7: num = 0 on axis 1: plan 'grid_scan' would fail at once, with no points to visit"
    );
}

#[test]
fn flyers_without_points() {
    assert_eq!(
        one("[plan]\nname = 'fly'\nflyers = ['flyer', 'empty']\n"),
        "plan.toml:3:20: flyer 'empty' acquires no points (num_points = 0 at dev.toml:15): plan 'fly' would emit no events from it"
    );
    assert_eq!(
        one("[[steps]]\nstub = 'open_run'\n[[steps]]\nstub = 'kickoff'\nflyer = 'empty'\n[[steps]]\nstub = 'complete'\nflyer = 'empty'\n[[steps]]\nstub = 'collect'\nflyer = 'empty'\n[[steps]]\nstub = 'close_run'\n"),
        "plan.toml:5:9: flyer 'empty' acquires no points (num_points = 0 at dev.toml:15): step 2 would emit no events from it"
    );
}

#[test]
fn the_binary_check_refuses_a_doomed_plan_with_file_and_line() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("preflight-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (devices, plan) = (dir.join("dev.toml"), dir.join("plan.toml"));
    std::fs::write(&devices, DEVICES).unwrap();
    std::fs::write(&plan, SCAN.replace("stop = 5", "stop = 50")).unwrap();
    let out = skyrun(&[
        "check",
        plan.to_str().unwrap(),
        "--devices",
        devices.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "{}:6:8: stop = 50 is outside the limits [-10, 10] of motor 'motor' ({}:1): plan 'scan' would fail when it moves there\nerror: {} would fail: 1 problem found before running\n",
            plan.display(),
            devices.display(),
            plan.display()
        )
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("is valid"));
}
