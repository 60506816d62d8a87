//! EpicsSignal / EpicsSignalRO against a real pythonSoftIOC (C EPICS base).

mod common;

use common::{client, within, Ioc};
use opentelemetry::Context;
use serde_json::json;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply};
use skyrun_epics::{connect_all, EpicsSignal, EpicsSignalRO, PvClient, SetOptions};

async fn ask(h: &DeviceHandle, op: DeviceOp) -> Result<DeviceReply, DeviceError> {
    within(10, "a device request", h.request(op, &Context::new())).await
}

/// Reads `key` until it is `want` (the monitor update of a put may arrive
/// just after the put's completion callback); fails after 10 s.
async fn read_until(h: &DeviceHandle, key: &str, want: serde_json::Value) {
    let t0 = std::time::Instant::now();
    loop {
        let got = read_value(h, key).await;
        if got == want {
            return;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{key} read {got} for 10 s after the set, not {want}"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn read_value(h: &DeviceHandle, key: &str) -> serde_json::Value {
    match ask(h, DeviceOp::Read).await.expect("read") {
        DeviceReply::Readings(r) => r[key].value.clone(),
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn reads_and_describes_an_ao_record_as_ophyd_does() {
    let ioc = Ioc::signals(2);
    let ca = client(&[&ioc]);
    let sig = EpicsSignal::connect(ca.as_ref(), "ao", &ioc.pv("AO:00001"), None, 5.0)
        .await
        .expect("connects");
    let h = DeviceHandle::spawn(sig);
    let DeviceReply::Readings(r) = ask(&h, DeviceOp::Read).await.unwrap() else {
        panic!()
    };
    assert_eq!(r["ao"].value, json!(0.0));
    // The IOC's timestamp (the record's TIME), not the time of the read.
    assert!(r["ao"].timestamp > 1.7e9);
    let DeviceReply::DataKeys(k) = ask(&h, DeviceOp::Describe).await.unwrap() else {
        panic!()
    };
    let k = serde_json::to_value(&k["ao"]).unwrap();
    assert_eq!(k["source"], format!("PV:{}", ioc.pv("AO:00001")));
    assert_eq!(k["dtype"], "number");
    assert_eq!(k["shape"], json!([]));
    assert_eq!(k["units"], "mm");
    assert_eq!(k["precision"], 3);
    assert_eq!(k["lower_ctrl_limit"], -100.0);
    assert_eq!(k["upper_ctrl_limit"], 100.0);

    let name = EpicsSignalRO::connect(ca.as_ref(), "name", &ioc.pv("NAME"), 5.0)
        .await
        .unwrap();
    let n = DeviceHandle::spawn(name);
    assert_eq!(read_value(&n, "name").await, json!("skyrun"));
    let DeviceReply::DataKeys(k) = ask(&n, DeviceOp::Describe).await.unwrap() else {
        panic!()
    };
    assert_eq!(k["name"].dtype, "string");
    // A read-only signal refuses a set.
    let err = ask(&n, DeviceOp::Set(json!("x"))).await.unwrap_err();
    assert!(err.to_string().contains("does not support set"), "{err}");
}

#[actix_rt::test]
async fn set_waits_for_the_readback_or_for_put_completion() {
    let ioc = Ioc::signals(1);
    let ca = client(&[&ioc]);
    let ao = EpicsSignal::connect(ca.as_ref(), "ao", &ioc.pv("AO:00000"), None, 5.0)
        .await
        .unwrap();
    let h = DeviceHandle::spawn(ao);
    let DeviceReply::Status(st) = ask(&h, DeviceOp::Set(json!(4.25))).await.unwrap() else {
        panic!()
    };
    within(10, "the set", st.wait())
        .await
        .expect("the set succeeds");
    assert_eq!(read_value(&h, "ao").await, json!(4.25));

    // SLOW completes its put 0.3 s after the write: the status waits for it.
    let slow = EpicsSignal::connect(ca.as_ref(), "slow", &ioc.pv("SLOW"), None, 5.0)
        .await
        .unwrap()
        .with_set_options(SetOptions {
            put_complete: true,
            ..Default::default()
        });
    let h = DeviceHandle::spawn(slow);
    let DeviceReply::Status(st) = ask(&h, DeviceOp::Set(json!(7.5))).await.unwrap() else {
        panic!()
    };
    assert!(
        !st.done(),
        "a put-completion set waits for the IOC's callback"
    );
    within(10, "the put-completion set", st.wait())
        .await
        .expect("the set succeeds");
    read_until(&h, "slow", json!(7.5)).await;

    // Text to a numeric PV: a clear error, on the status.
    let DeviceReply::Status(st) = ask(&h, DeviceOp::Set(json!("abc"))).await.unwrap() else {
        panic!()
    };
    let err = within(10, "a bad set", st.wait()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("cannot write \"abc\" to PV '{}'", ioc.pv("SLOW"))),
        "{err}"
    );
}

#[actix_rt::test]
async fn monitored_updates_arrive_and_read_answers_from_the_latest() {
    let ioc = Ioc::signals(1);
    let ca = client(&[&ioc]);
    let tick = EpicsSignalRO::connect(ca.as_ref(), "tick", &ioc.pv("TICK"), 5.0)
        .await
        .unwrap();
    let mut watch = tick.read_pv().watch();
    let mut seen = Vec::new();
    within(10, "five monitor updates", async {
        while seen.len() < 5 {
            watch.changed().await.expect("the PV lives");
            let v = watch
                .borrow()
                .latest
                .as_ref()
                .unwrap()
                .value
                .as_f64()
                .unwrap();
            seen.push(v);
        }
    })
    .await;
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "{seen:?}");
    let h = DeviceHandle::spawn(tick);
    let now = read_value(&h, "tick").await.as_f64().unwrap();
    assert!(now >= seen[4], "{now} after {seen:?}");
}

#[actix_rt::test]
async fn missing_pvs_are_listed_with_their_devices() {
    let ioc = Ioc::signals(1);
    let ca = client(&[&ioc]);
    let pvs = vec![
        ("good".to_string(), ioc.pv("AO:00000")),
        ("m1".to_string(), ioc.pv("NOPE:1")),
        ("s2".to_string(), ioc.pv("NOPE:2")),
    ];
    let err = within(
        20,
        "connect_all",
        connect_all(ca.as_ref(), &pvs, std::time::Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "2 PVs did not connect within 1 s: {} (m1), {} (s2)",
            ioc.pv("NOPE:1"),
            ioc.pv("NOPE:2")
        )
    );
    assert_eq!(ca.protocol(), "ca");
}

#[actix_rt::test]
async fn a_dead_ioc_fails_reads_and_a_restarted_one_is_reconnected() {
    let mut ioc = Ioc::signals(1);
    let ca = client(&[&ioc]);
    let ao = EpicsSignal::connect(ca.as_ref(), "ao", &ioc.pv("AO:00000"), None, 5.0)
        .await
        .unwrap();
    let mut watch = ao.read_pv().watch();
    let h = DeviceHandle::spawn(ao);
    ioc.kill();
    within(30, "the disconnect", async {
        while watch.borrow().connected {
            watch.changed().await.unwrap();
        }
    })
    .await;
    let err = ask(&h, DeviceOp::Read).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "PV '{}' is disconnected (IOC 127.0.0.1:{})",
            ioc.pv("AO:00000"),
            ioc.port
        )),
        "{err}"
    );
    ioc.restart();
    within(60, "the reconnect", async {
        while !watch.borrow().connected {
            watch.changed().await.unwrap();
        }
    })
    .await;
    let DeviceReply::Status(st) = ask(&h, DeviceOp::Set(json!(1.5))).await.unwrap() else {
        panic!()
    };
    within(10, "a set after the restart", st.wait())
        .await
        .unwrap();
    assert_eq!(read_value(&h, "ao").await, json!(1.5));
}
