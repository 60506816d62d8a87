//! The engine driving EPICS devices: a scan of an EpicsMotor (caproto motor
//! record) reading an EpicsSignalRO (pythonSoftIOC) records the positions it
//! asked for, and a dead IOC fails the run with a reason, leaving a stop document.

mod common;

use std::sync::{Arc, Mutex};

use common::{client, within, Ioc};
use skyrun::documents::Document;
use skyrun::{plans, RunEngine};
use skyrun_actors::DeviceHandle;
use skyrun_epics::{EpicsMotor, EpicsSignalRO};

/// Waits (bounded) until the stop document has been delivered.
async fn stopped(docs: &Mutex<Vec<Document>>) {
    within(10, "the stop document", async {
        while !docs.lock().unwrap().iter().any(|d| d.name() == "stop") {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
}

#[actix_rt::test]
async fn a_scan_records_the_positions_it_asked_for() {
    let motors = Ioc::motors(1, &["--velocity", "20"]);
    let signals = Ioc::signals(1);
    let ca = client(&[&motors, &signals]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &motors.pv("MTR1"), 5.0)
        .await
        .unwrap();
    let det = EpicsSignalRO::connect(ca.as_ref(), "tick", &signals.pv("TICK"), 5.0)
        .await
        .unwrap();
    let (m, det) = (DeviceHandle::spawn(m), DeviceHandle::spawn(det));
    let re = RunEngine::new();
    let docs = Arc::new(Mutex::new(Vec::new()));
    let sink = docs.clone();
    re.subscribe(move |_, d| sink.lock().unwrap().push(d.clone()));
    let summary = within(
        60,
        "the scan",
        re.run(plans::scan(vec![det], &m, -1.0, 1.0, 5)),
    )
    .await
    .expect("the scan succeeds");
    assert_eq!(summary.exit_status, skyrun::documents::ExitStatus::Success);
    stopped(&docs).await;
    let docs = docs.lock().unwrap();
    let positions: Vec<f64> = docs
        .iter()
        .filter_map(|d| match d {
            Document::Event(e) => e.data["m1"].as_f64(),
            _ => None,
        })
        .collect();
    assert_eq!(positions, [-1.0, -0.5, 0.0, 0.5, 1.0]);
    let Some(Document::Descriptor(desc)) = docs.iter().find(|d| d.name() == "descriptor") else {
        panic!("no descriptor")
    };
    assert_eq!(
        desc.data_keys["m1"].source,
        format!("PV:{}", motors.pv("MTR1.RBV"))
    );
    assert_eq!(desc.data_keys["tick"].units.as_deref(), Some("counts"));
}

#[actix_rt::test]
async fn a_dead_ioc_fails_the_run_with_a_reason_and_a_stop_document() {
    let mut motors = Ioc::motors(1, &[]);
    let ca = client(&[&motors]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &motors.pv("MTR1"), 5.0)
        .await
        .unwrap();
    let dmov = m.field("DMOV").unwrap().clone();
    let m = DeviceHandle::spawn(m);
    let re = RunEngine::new();
    let docs = Arc::new(Mutex::new(Vec::new()));
    let sink = docs.clone();
    re.subscribe(move |_, d| sink.lock().unwrap().push(d.clone()));
    let mut watch = dmov.watch();
    let run = {
        let (re, m) = (re.clone(), m.clone());
        actix_rt::spawn(async move { re.run(plans::scan(vec![m.clone()], &m, 0.0, 9.0, 2)).await })
    };
    // The second point is a 9 mm move at 1 mm/s: kill the IOC during it.
    within(20, "the long move", async {
        let mut zeros = 0;
        while zeros < 2 {
            watch.changed().await.unwrap();
            if watch.borrow().latest.as_ref().map(|u| u.value.clone()) == Some(serde_json::json!(0))
            {
                zeros += 1;
            }
        }
    })
    .await;
    motors.kill();
    let err = within(30, "the failed run", run)
        .await
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("lost PV '{}'", motors.pv("MTR1.DMOV")))
            && text.contains(&format!("IOC 127.0.0.1:{}", motors.port)),
        "{text}"
    );
    stopped(&docs).await;
    let docs = docs.lock().unwrap();
    let Some(Document::Stop(stop)) = docs.last() else {
        panic!("the run ends with a stop document")
    };
    assert_eq!(stop.exit_status, skyrun::documents::ExitStatus::Fail);
    assert!(stop.reason.contains("lost PV"), "{}", stop.reason);
}
