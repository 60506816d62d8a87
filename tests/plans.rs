//! The standard plans and plan stubs: what they move, read and emit.

mod common;

use std::sync::{Arc, Mutex};

use common::{motor_det, run, Docs};
use serde_json::json;
use skyrun::{plan_stubs as bps, plans, preprocessors, Document, Plan, RunEngine};
use skyrun_actors::{
    sim::{SynAxis, SynFlyer, SynGauss},
    DeviceError, DeviceHandle, Readable, Stageable,
};

#[test]
fn list_scan_visits_the_given_positions() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (motor, det) = motor_det();
        re.run(plans::list_scan(vec![det], &motor, vec![3.0, -1.0, 2.0]))
            .await
            .unwrap();
        let xs: Vec<f64> = docs
            .events()
            .iter()
            .map(|e| e.data["motor"].as_f64().unwrap())
            .collect();
        assert_eq!(xs, [3.0, -1.0, 2.0]);
        assert_eq!(docs.starts()[0].metadata["plan_name"], "list_scan");
    });
}

#[test]
fn rel_scan_is_relative_and_returns_the_motor() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = SynAxis::new("motor").with_position(10.0);
        let probe = motor.probe();
        let det = DeviceHandle::spawn(SynGauss::new("det", motor.probe(), 10.0, 1.0, 1.0));
        let motor = DeviceHandle::spawn(motor);
        re.run(plans::rel_scan(vec![det], &motor, -1.0, 1.0, 3))
            .await
            .unwrap();
        let xs: Vec<f64> = docs
            .events()
            .iter()
            .map(|e| e.data["motor"].as_f64().unwrap())
            .collect();
        assert_eq!(xs, [9.0, 10.0, 11.0]);
        assert_eq!(docs.starts()[0].metadata["plan_name"], "rel_scan");
        assert_eq!(probe.position(), 10.0, "back where it started");
    });
}

#[test]
fn grid_scan_covers_the_mesh_and_snakes() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (a, b) = (SynAxis::new("a"), SynAxis::new("b"));
        let det = DeviceHandle::spawn(SynGauss::new("det", a.probe(), 0.0, 1.0, 1.0));
        let (a, b) = (DeviceHandle::spawn(a), DeviceHandle::spawn(b));
        re.run(plans::grid_scan(
            vec![det.clone()],
            vec![(a.clone(), 0.0, 1.0, 2), (b.clone(), 0.0, 2.0, 3)],
            true,
        ))
        .await
        .unwrap();
        let pts: Vec<(f64, f64)> = docs
            .events()
            .iter()
            .map(|e| (e.data["a"].as_f64().unwrap(), e.data["b"].as_f64().unwrap()))
            .collect();
        assert_eq!(
            pts,
            [
                (0.0, 0.0),
                (0.0, 1.0),
                (0.0, 2.0),
                (1.0, 2.0),
                (1.0, 1.0),
                (1.0, 0.0)
            ]
        );
        let start = &docs.starts()[0];
        assert_eq!(start.metadata["shape"], json!([2, 3]));
        assert_eq!(start.metadata["num_points"], 6);
        assert_eq!(start.metadata["motors"], json!(["a", "b"]));
        docs.take();
        re.run(plans::grid_scan(
            vec![det],
            vec![(a, 0.0, 1.0, 2), (b, 0.0, 1.0, 2)],
            false,
        ))
        .await
        .unwrap();
        let pts: Vec<(f64, f64)> = docs
            .events()
            .iter()
            .map(|e| (e.data["a"].as_f64().unwrap(), e.data["b"].as_f64().unwrap()))
            .collect();
        assert_eq!(pts, [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]);
    });
}

#[test]
fn fly_emits_the_collected_events_in_the_flyer_stream() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let flyer = DeviceHandle::spawn(SynFlyer::new("flyer", 5).with_duration(0.02));
        re.run(plans::fly(vec![flyer])).await.unwrap();
        assert_eq!(
            docs.names(),
            [
                "start",
                "descriptor",
                // Bluesky's collect: the collected events as one page.
                "event_page",
                "stop"
            ]
        );
        let Document::EventPage(page) = &docs.all()[2] else {
            unreachable!()
        };
        assert_eq!(page.seq_num, [1, 2, 3, 4, 5]);
        assert_eq!(page.data["flyer_x"].len(), 5);
        let d = &docs.descriptors()[0];
        assert_eq!(d.name, "flyer");
        assert_eq!(
            d.object_keys["flyer"],
            vec!["flyer_x".to_string(), "flyer_y".to_string()]
        );
        assert_eq!(docs.stops()[0].num_events["flyer"], 5);
    });
}

#[test]
fn invalid_standard_plan_arguments_fail_clearly() {
    run(async {
        let re = RunEngine::new();
        let (motor, det) = motor_det();
        let cases = [
            (
                plans::count(vec![det.clone()], 0, 0.0),
                "count: num must be at least 1",
            ),
            (
                plans::count(vec![det.clone()], 1, -1.0),
                "count: delay must be a non-negative number of seconds, got -1",
            ),
            (
                plans::scan(vec![det.clone()], &motor, f64::NAN, 1.0, 3),
                "scan: start and stop must be finite numbers, got NaN and 1",
            ),
            (
                plans::scan(vec![det.clone()], &motor, 0.0, 1.0, 0),
                "scan: there are no points to visit",
            ),
            (
                plans::list_scan(vec![det.clone()], &motor, vec![1.0, f64::INFINITY]),
                "list_scan: every position must be a finite number, got inf",
            ),
        ];
        for (plan, expected) in cases {
            let err = re.run(plan).await.unwrap_err();
            let skyrun::RunError::Failed { error, .. } = err else {
                panic!()
            };
            assert_eq!(error.to_string(), expected);
        }
    });
}

/// A detector that records stage/unstage calls.
struct Stager {
    log: Arc<Mutex<Vec<String>>>,
}

impl skyrun_actors::Device for Stager {
    fn name(&self) -> &str {
        "stager"
    }
    fn type_name(&self) -> &'static str {
        "Stager"
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
    fn stageable(&mut self) -> Option<&mut dyn Stageable> {
        Some(self)
    }
}

impl Readable for Stager {
    fn read(&mut self) -> Result<skyrun_actors::Readings, DeviceError> {
        self.log.lock().unwrap().push("read".into());
        Ok(skyrun_actors::Readings::from([(
            "stager".into(),
            skyrun_actors::Reading::new(1),
        )]))
    }
    fn describe(&self) -> skyrun_actors::DataKeys {
        skyrun_actors::DataKeys::from([("stager".into(), skyrun_actors::DataKey::number("X"))])
    }
}

impl Stageable for Stager {
    fn stage(&mut self) -> Result<(), DeviceError> {
        self.log.lock().unwrap().push("stage".into());
        Ok(())
    }
    fn unstage(&mut self) -> Result<(), DeviceError> {
        self.log.lock().unwrap().push("unstage".into());
        Ok(())
    }
}

#[test]
fn standard_plans_stage_and_unstage_even_on_failure() {
    run(async {
        let re = RunEngine::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let dev = DeviceHandle::spawn(Stager { log: log.clone() });
        re.run(plans::count(vec![dev.clone()], 2, 0.0))
            .await
            .unwrap();
        assert_eq!(*log.lock().unwrap(), ["stage", "read", "read", "unstage"]);
        log.lock().unwrap().clear();
        let d = dev.clone();
        let failing = preprocessors::stage_wrapper(
            Plan::new("fails", move |ctx| async move {
                bps::read(&ctx, &d).await?;
                Err(skyrun::PlanError::failed("boom"))
            }),
            vec![dev.clone()],
        );
        assert!(re.run(failing).await.is_err());
        assert_eq!(*log.lock().unwrap(), ["stage", "read", "unstage"]);
    });
}

#[test]
fn plan_stubs_move_read_and_decide() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (motor, det) = motor_det();
        let (m, d) = (motor.clone(), det.clone());
        // An adaptive plan: walk towards the peak while the detector increases.
        re.run(preprocessors::run_wrapper(
            Plan::new("climb", move |ctx| async move {
                bps::mv(&ctx, &[(&m, -3.0)]).await?;
                let mut best = f64::MIN;
                loop {
                    let r = bps::trigger_and_read(&ctx, &[d.clone(), m.clone()], "primary").await?;
                    let y = r["det"].value.as_f64().unwrap();
                    if y <= best {
                        break;
                    }
                    best = y;
                    bps::mvr(&ctx, &[(&m, 0.5)]).await?;
                }
                bps::rel_set(&ctx, &m, -0.5, None, true).await?;
                bps::declare_stream(&ctx, "baseline", &[&d]).await?;
                bps::create(&ctx, "baseline").await?;
                bps::read(&ctx, &d).await?;
                bps::save(&ctx).await?;
                Ok(())
            }),
            Default::default(),
        ))
        .await
        .unwrap();
        let xs: Vec<f64> = docs
            .events()
            .iter()
            .filter_map(|e| e.data.get("motor").and_then(|v| v.as_f64()))
            .collect();
        assert_eq!(xs, [-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5]);
        let names: Vec<String> = docs.descriptors().iter().map(|d| d.name.clone()).collect();
        assert_eq!(names, ["primary", "baseline"]);
        assert_eq!(docs.stops()[0].num_events["baseline"], 1);
        // The motor went back to the peak.
        let ctx_check = motor
            .request(
                skyrun_actors::DeviceOp::Position,
                &opentelemetry::Context::new(),
            )
            .await
            .unwrap();
        let skyrun_actors::DeviceReply::Position(p) = ctx_check else {
            panic!()
        };
        assert_eq!(p, json!(0.0));
    });
}

#[test]
fn count_with_delay_sleeps_between_points() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (_m, det) = motor_det();
        re.run(plans::count(vec![det], 3, 0.02)).await.unwrap();
        let t: Vec<f64> = docs.events().iter().map(|e| e.time).collect();
        assert_eq!(t.len(), 3);
        assert!(t[1] - t[0] >= 0.015 && t[2] - t[1] >= 0.015, "{t:?}");
    });
}

/// `baseline_wrapper` reads its devices into the `baseline` stream after
/// each `open_run` and before each `close_run`, as Bluesky's
/// SupplementalData does: the same document order as Bluesky's.
#[test]
fn the_baseline_is_read_at_the_start_and_the_end_of_the_run() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (motor, det) = motor_det();
        let ring = DeviceHandle::spawn(skyrun_actors::sim::SynSignal::new("ring_current", 300.0));
        let plan = preprocessors::baseline_wrapper(
            plans::scan(vec![det], &motor, -1.0, 1.0, 3),
            vec![ring],
        );
        re.run(plan).await.unwrap();
        let stop = &docs.stops()[0];
        assert_eq!(stop.num_events["baseline"], 2);
        assert_eq!(stop.num_events["primary"], 3);
        // start, the baseline's descriptor and first event, then the scan's
        // descriptor and events, the second baseline event, stop.
        let order: Vec<String> = docs
            .all()
            .iter()
            .map(|d| match d {
                Document::Descriptor(d) => format!("descriptor {}", d.name),
                Document::Event(e) => {
                    let stream = if e.data.contains_key("ring_current") {
                        "baseline"
                    } else {
                        "primary"
                    };
                    format!("event {stream} {}", e.seq_num)
                }
                other => other.name().to_owned(),
            })
            .collect();
        assert_eq!(
            order,
            [
                "start",
                "descriptor baseline",
                "event baseline 1",
                "descriptor primary",
                "event primary 1",
                "event primary 2",
                "event primary 3",
                "event baseline 2",
                "stop"
            ]
        );
        // A plan that fails still closes its run with the baseline read.
        let failing = preprocessors::baseline_wrapper(
            preprocessors::run_wrapper(
                Plan::new("boom", |_| async { Err(skyrun::PlanError::failed("boom")) }),
                Default::default(),
            ),
            vec![DeviceHandle::spawn(skyrun_actors::sim::SynSignal::new(
                "ring_current",
                1.0,
            ))],
        );
        re.run(failing).await.unwrap_err();
        let stop = &docs.stops()[1];
        assert_eq!(stop.exit_status, skyrun::ExitStatus::Fail);
        assert_eq!(stop.num_events["baseline"], 2);
    });
}
