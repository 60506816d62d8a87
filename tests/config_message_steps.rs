//! Plan files can spell a plan message by message, as Bluesky's stubs do:
//! `stage`, `unstage`, `declare_stream`, `create`, `read`, `save`, `drop`,
//! `configure`, `pause`, `locate`/`rd` — each runs as its message, and the
//! ones that need a run say so with the file and line.

mod common;

use std::sync::{Arc, Mutex};

use skyrun::config::{DeviceSet, PlanFile};
use skyrun::{Document, RunEngine};
use skyrun_actors::SpanTracer;

const DEVICES: &str = r#"
[[motor]]
name = "motor"

[[detector]]
name = "det"
motor = "motor"
"#;

const PLAN: &str = r#"
[[steps]]
stub = "stage"
device = "det"
[[steps]]
stub = "open_run"
[[steps]]
stub = "declare_stream"
devices = ["det", "motor"]
[[steps]]
stub = "create"
[[steps]]
stub = "read"
device = "det"
[[steps]]
stub = "read"
device = "motor"
[[steps]]
stub = "save"
[[steps]]
stub = "create"
[[steps]]
stub = "read"
device = "det"
[[steps]]
stub = "drop"
[[steps]]
stub = "rd"
device = "motor"
[[steps]]
stub = "configure"
device = "motor"
settings = { velocity = 2.0 }
[[steps]]
stub = "close_run"
[[steps]]
stub = "unstage"
device = "det"
"#;

#[test]
fn a_plan_spelled_message_by_message_runs_as_its_messages() {
    let set = DeviceSet::parse(DEVICES, "dev.toml").unwrap();
    let plan = PlanFile::parse(PLAN, "plan.toml").unwrap();
    let summary = plan.check(&set).unwrap();
    let described = summary.description.clone();
    assert_eq!(
        described[2].trim(),
        "3. declare_stream 'primary' for [det, motor]"
    );
    assert_eq!(described[10].trim(), "11. locate motor");
    assert_eq!(described[11].trim(), "12. configure motor (velocity)");
    common::run(async {
        let devs = set.spawn(SpanTracer::disabled());
        let built = plan.build(&set, &devs).unwrap();
        let re = RunEngine::new();
        let docs = Arc::new(Mutex::new(Vec::new()));
        let d = docs.clone();
        re.subscribe(move |name, doc| d.lock().unwrap().push((name.to_owned(), doc.clone())));
        re.run(built.plan).await.unwrap();
        let docs = docs.lock().unwrap();
        let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
        // declare_stream's descriptor, one saved event (the dropped one is
        // not emitted), configure's new descriptor, stop.
        assert_eq!(
            names,
            ["start", "descriptor", "event", "descriptor", "stop"]
        );
        let Document::Descriptor(desc) = &docs[1].1 else {
            unreachable!()
        };
        let keys: Vec<&String> = desc.data_keys.keys().collect();
        assert!(
            keys.iter().any(|k| *k == "det") && keys.iter().any(|k| *k == "motor"),
            "{keys:?}"
        );
        let Document::Descriptor(new) = &docs[3].1 else {
            unreachable!()
        };
        assert_eq!(
            new.configuration["motor"].data["motor_velocity"],
            serde_json::json!(2.0)
        );
    });
}

#[test]
fn message_steps_that_need_a_run_say_so_with_the_line() {
    let set = DeviceSet::parse(DEVICES, "dev.toml").unwrap();
    let err = PlanFile::parse("[[steps]]\nstub = 'create'\n", "plan.toml")
        .and_then(|p| p.check(&set))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "plan.toml:1:1: step 1 (create) needs an open run: add a step with stub = \"open_run\" before it"
    );
    let err = PlanFile::parse("[[steps]]\nstub = 'stage'\nstream = 'x'\n", "plan.toml")
        .and_then(|p| p.check(&set))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "plan.toml:3:10: argument 'stream' is not used by step 1 'stage' (it takes: device)"
    );
}
