//! Families and globs in plan files: a family by its prefix or a glob
//! wherever a list of devices goes, a single string for a list, one position
//! for many motors, and the errors when they name nothing, too much, or the
//! wrong kind. The last test runs such a plan on spawned devices.

use std::sync::{Arc, Mutex};

use skyrun::config::{DeviceSet, PlanFile};
use skyrun::{Document, RunEngine};
use skyrun_actors::SpanTracer;

const DEVICES: &str = r#"
[[motor]]
name = "motor"
limits = [-5, 5]

[[motor_family]]
prefix = "m"
count = 12

[[detector]]
name = "det"
motor = "motor"

[[detector_family]]
prefix = "d"
count = 12
motor_family = "m"

[[signal]]
name = "temp"

[[flyer]]
name = "flyer"
num_points = 4
"#;

fn set() -> DeviceSet {
    DeviceSet::parse(DEVICES, "dev.toml").unwrap()
}

fn summary(text: &str) -> skyrun::config::PlanSummary {
    PlanFile::parse(text, "plan.toml")
        .and_then(|p| p.check(&set()))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn error(text: &str) -> String {
    match PlanFile::parse(text, "plan.toml").and_then(|p| p.check(&set())) {
        Ok(s) => panic!("accepted: {s:?}\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn a_family_by_its_prefix_and_a_single_string_for_a_list() {
    let s = summary("[plan]\nname = 'count'\ndetectors = 'd'\n");
    assert_eq!(s.detectors, names("d", 12));
    assert_eq!(s.description, ["count [d0..d11 (12)] 1 times"]);
    // In a list, next to single devices, each device once.
    let s = summary("[plan]\nname = 'count'\ndetectors = ['det', 'd', 'd3']\n");
    let mut want = vec!["det".to_owned()];
    want.extend(names("d", 12));
    assert_eq!(s.detectors, want);
}

#[test]
fn globs_match_in_declaration_order() {
    let s = summary("[plan]\nname = 'count'\ndetectors = ['d1*', 'd?']\n");
    let mut want: Vec<String> = ["d1", "d10", "d11"].map(String::from).to_vec();
    want.extend(["d0", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9"].map(String::from));
    assert_eq!(s.detectors, want);
    let s = summary("[plan]\nname = 'fly'\nflyers = 'fly*'\n");
    assert_eq!(s.flyers, ["flyer"]);
}

#[test]
fn one_position_for_many_motors() {
    let s = summary("[[steps]]\nstub = 'mv'\nmotors = 'm'\nposition = 2.5\n");
    assert_eq!(s.motors, names("m", 12));
    assert_eq!(s.description, ["  1. mv m0..m11 to 2.5 (12 motors)"]);
    // A list per motor still pairs one to one.
    let s = summary("[[steps]]\nstub = 'mvr'\nmotors = ['m1*']\npositions = [1, 2, 3]\n");
    assert_eq!(s.description, ["  1. mvr m1 by 1, m10 by 2, m11 by 3"]);
}

#[test]
fn names_that_expand_wrongly_are_errors_at_their_place() {
    assert_eq!(
        error("[plan]\nname = 'count'\ndetectors = ['x*']\n"),
        "plan.toml:3:14: 'x*' (a detector of plan 'count') matches no device (families: 'm' (12 motors), 'd' (12 detectors))"
    );
    // Every device a glob names must fit: `*` takes in the flyer too.
    assert_eq!(
        error("[plan]\nname = 'count'\ndetectors = '*'\n"),
        "plan.toml:3:13: device 'temp' is a signal, but a detector of plan 'count' must be a motor or detector (standard plans stage their devices, and signals cannot be staged; read signals with a trigger_and_read step)"
    );
    assert_eq!(
        error("[[steps]]\nstub = 'mv'\nmotors = 'm'\npositions = [1, 2]\n"),
        "plan.toml:4:13: 'positions' has 2 numbers for 12 motors (m0..m11 (family 'm', 12)); for one position for all of them, write position = X"
    );
    assert_eq!(
        error("[[steps]]\nstub = 'mv'\nmotors = 'm'\nposition = 1\npositions = [1]\n"),
        "plan.toml:4:12: give either 'position' (one for every motor) or 'positions' (one per motor), not both"
    );
}

#[test]
fn did_you_mean_only_suggests_devices_that_fit() {
    // 'dett' is one letter from 'det' and from nothing else: suggested as a detector ...
    assert_eq!(
        error("[plan]\nname = 'count'\ndetectors = ['dett']\n"),
        "plan.toml:3:14: unknown device 'dett' (did you mean 'det'? motors and detectors: motor, m0..m11 (family 'm', 12), det, d0..d11 (family 'd', 12))"
    );
    // ... and never where a flyer is wanted.
    assert_eq!(
        error("[plan]\nname = 'fly'\nflyers = ['dett']\n"),
        "plan.toml:3:11: unknown device 'dett' (flyers: flyer)"
    );
}

#[test]
fn a_family_plan_runs_every_member() {
    let set = set();
    let plan = PlanFile::parse(
        "[[steps]]\nstub = 'mv'\nmotors = 'm'\nposition = 3\n[[steps]]\nstub = 'count'\ndetectors = ['m1*']\n",
        "p.toml",
    )
    .unwrap();
    actix::System::new().block_on(async {
        let devs = set.spawn(SpanTracer::disabled());
        let built = plan.build(&set, &devs).unwrap();
        let re = RunEngine::new();
        let events = Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        re.subscribe(move |_, doc| {
            if let Document::Event(ev) = doc {
                e.lock().unwrap().push(ev.data.clone());
            }
        });
        re.run(built.plan).await.unwrap();
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1);
        for m in ["m1", "m10", "m11"] {
            assert_eq!(events[0][m], 3.0, "{m}: {:?}", events[0]);
        }
    });
}
