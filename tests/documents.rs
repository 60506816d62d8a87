//! Document order and content for the standard plans.

mod common;

use common::{motor_det, run, Docs};
use serde_json::json;
use skyrun::{plans, ExitStatus, RunEngine};
use skyrun_actors::{
    sim::SynGauss, DataKey, DataKeys, Device, DeviceError, DeviceHandle, Hints, Readable, Reading,
    Readings,
};

#[test]
fn count_emits_start_descriptor_events_stop_with_content() {
    run(async {
        let re = RunEngine::builder().metadata("beamline", "test-bl").build();
        let docs = Docs::subscribe(&re);
        let (_motor, det) = motor_det();
        let summary = re
            .run(plans::count_with(
                vec![det.clone()],
                3,
                0.0,
                serde_json::Map::from_iter([("sample".into(), json!("Si"))]),
            ))
            .await
            .unwrap();
        assert_eq!(
            docs.names(),
            ["start", "descriptor", "event", "event", "event", "stop"]
        );
        let start = &docs.starts()[0];
        assert_eq!(summary.run_uids, vec![start.uid.clone()]);
        assert_eq!(start.metadata["plan_name"], "count");
        assert_eq!(start.metadata["detectors"], json!(["det"]));
        assert_eq!(start.metadata["num_points"], 3);
        assert_eq!(start.metadata["sample"], "Si");
        assert_eq!(start.metadata["beamline"], "test-bl");
        assert_eq!(start.metadata["plan_args"]["num"], 3);
        assert!(start.metadata.get("motors").is_none());

        let desc = &docs.descriptors()[0];
        assert_eq!(desc.name, "primary");
        assert_eq!(desc.run_start, start.uid);
        assert_eq!(desc.data_keys["det"].dtype, "number");
        assert_eq!(desc.data_keys["det"].source, "SIM:det");
        assert_eq!(desc.data_keys["det"].object_name.as_deref(), Some("det"));
        assert_eq!(desc.object_keys["det"], vec!["det".to_string()]);
        assert_eq!(desc.configuration["det"].data["det_sigma"], json!(1.0));
        assert_eq!(desc.hints["det"].field_names(), ["det"]);

        let events = docs.events();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq_num, i as u64 + 1);
            assert_eq!(e.descriptor, desc.uid);
            assert_eq!(e.data["det"], json!(1.0), "motor at 0 → peak");
            assert!(e.timestamps["det"] > 0.0);
            assert!(e.filled.is_empty());
        }
        let stop = &docs.stops()[0];
        assert_eq!(stop.run_start, start.uid);
        assert_eq!(stop.exit_status, ExitStatus::Success);
        assert_eq!(stop.reason, "");
        assert_eq!(stop.num_events["primary"], 3);
    });
}

#[test]
fn scan_reads_motor_and_detector_at_each_point() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (motor, det) = motor_det();
        re.run(plans::scan(vec![det], &motor, -1.0, 1.0, 5))
            .await
            .unwrap();
        assert_eq!(
            docs.names(),
            [
                "start",
                "descriptor",
                "event",
                "event",
                "event",
                "event",
                "event",
                "stop"
            ]
        );
        let start = &docs.starts()[0];
        assert_eq!(start.metadata["plan_name"], "scan");
        assert_eq!(start.metadata["motors"], json!(["motor"]));
        assert_eq!(
            start.metadata["hints"]["dimensions"],
            json!([[["motor"], "primary"]])
        );
        let desc = &docs.descriptors()[0];
        let keys: Vec<&String> = desc.data_keys.keys().collect();
        assert_eq!(keys, ["det", "motor", "motor_setpoint"]);
        assert_eq!(desc.data_keys["motor"].units.as_deref(), Some("mm"));
        assert_eq!(
            desc.configuration["motor"].data.keys().collect::<Vec<_>>(),
            ["motor_velocity", "motor_acceleration"]
        );
        let events = docs.events();
        let xs: Vec<f64> = events
            .iter()
            .map(|e| e.data["motor"].as_f64().unwrap())
            .collect();
        assert_eq!(xs, [-1.0, -0.5, 0.0, 0.5, 1.0]);
        for e in &events {
            let x = e.data["motor"].as_f64().unwrap();
            let y = e.data["det"].as_f64().unwrap();
            assert!(
                (y - (-x * x / 2.0f64).exp()).abs() < 1e-12,
                "gauss at {x}: {y}"
            );
            assert_eq!(e.data["motor_setpoint"], e.data["motor"]);
        }
        assert_eq!(docs.stops()[0].num_events["primary"], 5);
    });
}

#[test]
fn documents_serialize_in_event_model_shape() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (motor, det) = motor_det();
        re.run(plans::scan(vec![det], &motor, 0.0, 1.0, 2))
            .await
            .unwrap();
        for doc in docs.all() {
            let v = serde_json::to_value(&doc).unwrap();
            let required: &[&str] = match doc.name() {
                "start" => &["uid", "time", "scan_id", "plan_name"],
                "descriptor" => &[
                    "uid",
                    "time",
                    "run_start",
                    "name",
                    "data_keys",
                    "object_keys",
                    "configuration",
                ],
                "event" => &[
                    "uid",
                    "time",
                    "descriptor",
                    "seq_num",
                    "data",
                    "timestamps",
                    "filled",
                ],
                "stop" => &[
                    "uid",
                    "time",
                    "run_start",
                    "exit_status",
                    "reason",
                    "num_events",
                ],
                other => panic!("unexpected {other}"),
            };
            for k in required {
                assert!(v.get(*k).is_some(), "{} lacks {k}: {v}", doc.name());
            }
            let back = skyrun::Document::from_named(doc.name(), v).unwrap();
            assert_eq!(back, doc);
        }
    });
}

#[test]
fn two_detectors_share_one_event_and_scan_ids_increase() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = skyrun_actors::sim::SynAxis::new("motor");
        let d1 = SynGauss::new("det1", motor.probe(), 0.0, 1.0, 1.0);
        let d2 = SynGauss::new("det2", motor.probe(), 1.0, 2.0, 1.0);
        let (d1, d2) = (DeviceHandle::spawn(d1), DeviceHandle::spawn(d2));
        let _m = DeviceHandle::spawn(motor);
        re.run(plans::count(vec![d1.clone(), d2.clone()], 2, 0.0))
            .await
            .unwrap();
        re.run(plans::count(vec![d1], 1, 0.0)).await.unwrap();
        let ev = docs.events();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].data.keys().collect::<Vec<_>>(), ["det1", "det2"]);
        let ids: Vec<u64> = docs.starts().iter().map(|s| s.scan_id).collect();
        assert_eq!(ids, [1, 2]);
    });
}

/// A readable device whose hints are whatever it is built with.
struct Hinted {
    name: String,
    hints: Option<Hints>,
}

impl Device for Hinted {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        "Hinted"
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
}

impl Readable for Hinted {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(Readings::from([(self.name.clone(), Reading::new(1.0))]))
    }
    fn describe(&self) -> DataKeys {
        DataKeys::from([(self.name.clone(), DataKey::number("SIM:hinted"))])
    }
    fn hints(&self) -> Option<Hints> {
        self.hints.clone()
    }
}

#[test]
fn descriptor_records_each_objects_hints_as_it_gave_them() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let hinted = |name: &str, hints: Option<serde_json::Value>| {
            DeviceHandle::spawn(Hinted {
                name: name.into(),
                hints: hints.map(|h| serde_json::from_value(h).unwrap()),
            })
        };
        let extra = hinted(
            "extra",
            Some(json!({"fields": ["extra"], "vis": "placeholder", "gridding": {"n": 2}})),
        );
        let no_fields = hinted("no_fields", Some(json!({"vis": "placeholder"})));
        let empty = hinted("empty", Some(json!({})));
        let nothing_hinted = hinted("nothing_hinted", Some(json!({"fields": []})));
        let none = hinted("none", None);
        let (_motor, det) = motor_det();
        re.run(plans::count(
            vec![extra, no_fields, empty, nothing_hinted, none, det],
            1,
            0.0,
        ))
        .await
        .unwrap();
        let desc = serde_json::to_value(&docs.descriptors()[0]).unwrap();
        // Bluesky's `hints[obj.name] = obj.hints`: every object with hints,
        // as they are (even empty); an object without is left out.
        assert_eq!(
            desc["hints"],
            json!({
                "extra": {"fields": ["extra"], "vis": "placeholder", "gridding": {"n": 2}},
                "no_fields": {"vis": "placeholder"},
                "empty": {},
                "nothing_hinted": {"fields": []},
                "det": {"fields": ["det"]},
            })
        );
        let back = skyrun::Document::from_named("descriptor", desc).unwrap();
        let skyrun::Document::Descriptor(back) = back else {
            panic!("not a descriptor: {back:?}")
        };
        assert_eq!(back.hints["extra"].field_names(), ["extra"]);
        assert_eq!(back.hints["extra"].extra["vis"], "placeholder");
        assert!(back.hints["no_fields"].field_names().is_empty());
    });
}
