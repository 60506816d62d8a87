//! PVAccess (the `pva` feature, experimental) against a real pvxs server:
//! pythonSoftIOC serving its records over PVA too. Get (value, the IOC's
//! timestamp, units, precision, limits), put with and without completion,
//! and monitor of scalars, through the same [`PvClient`] trait and devices
//! as Channel Access, with ophyd-async's `pva://` names; a server that goes
//! away and comes back.

#![cfg(feature = "pva")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{until_value, within, Ioc};
use opentelemetry::Context;
use serde_json::json;
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};
use skyrun_epics::{connect_all, EpicsSignal, EpicsSignalRO, PvClient, PvaClient, SetOptions};

fn pva(ioc: &Ioc) -> std::sync::Arc<PvaClient> {
    let port = ioc.pva_port.expect("a PVA IOC");
    PvaClient::start(&[SocketAddr::from(([127, 0, 0, 1], port))]).expect("the PVA client starts")
}

#[actix_rt::test]
async fn reads_describes_puts_and_monitors_scalars_over_pva() {
    let ioc = Ioc::signals_pva(2);
    let client = pva(&ioc);
    let name = format!("pva://{}", ioc.pv("AO:00001"));
    let sig = within(
        20,
        "the PVA connect",
        EpicsSignal::connect(client.as_ref(), "ao", &name, None, 10.0),
    )
    .await
    .expect("connects over PVA");
    let h = DeviceHandle::spawn(sig.with_set_options(SetOptions {
        put_complete: true,
        ..Default::default()
    }));
    let ask = |op| {
        let h = h.clone();
        async move { within(10, "a request", h.request(op, &Context::new())).await }
    };
    let DeviceReply::Readings(r) = ask(DeviceOp::Read).await.unwrap() else {
        panic!("readings")
    };
    assert_eq!(r["ao"].value, json!(0.0));
    assert!(r["ao"].timestamp > 1.7e9, "the IOC's timestamp: {r:?}");
    let DeviceReply::DataKeys(k) = ask(DeviceOp::Describe).await.unwrap() else {
        panic!("data keys")
    };
    let k = serde_json::to_value(&k["ao"]).unwrap();
    assert_eq!(k["source"], format!("PV:{name}"));
    assert_eq!(k["dtype"], "number");
    assert_eq!(k["units"], "mm");
    assert_eq!(k["precision"], 3);
    assert_eq!(k["lower_ctrl_limit"], -100.0);
    assert_eq!(k["upper_ctrl_limit"], 100.0);

    // A put with completion; the monitor brings the new value.
    let mut sub = within(10, "subscribe", h.subscribe()).await.unwrap();
    assert_eq!(
        within(10, "the current reading", sub.next()).await.unwrap()["ao"].value,
        json!(0.0)
    );
    let DeviceReply::Status(st) = ask(DeviceOp::Set(json!(4.5))).await.unwrap() else {
        panic!("a status")
    };
    within(10, "the put", st.wait())
        .await
        .expect("the put completes");
    let next = within(10, "the monitor update", sub.next()).await.unwrap();
    assert_eq!(next["ao"].value, json!(4.5));

    // Strings, and the 10 Hz record's updates.
    let pvs = connect_all(
        client.as_ref(),
        &[
            ("name".into(), format!("pva://{}", ioc.pv("NAME"))),
            ("tick".into(), ioc.pv("TICK")),
        ],
        Duration::from_secs(10),
    )
    .await
    .expect("NAME and TICK connect over PVA");
    assert_eq!(pvs[0].get().unwrap().value, json!("skyrun"));
    assert_eq!(pvs[0].meta().dtype, "string");
    pvs[0]
        .put(&json!("renamed"), None)
        .await
        .expect("a put without completion");
    until_value(&mut pvs[0].watch(), json!("renamed"), 10).await;
    let tick = EpicsSignalRO::from_pv("tick", pvs[1].clone());
    let first = pvs[1].get_f64().unwrap();
    let mut w = pvs[1].watch();
    within(10, "TICK counting", async {
        while w.borrow().latest.as_ref().and_then(|u| u.value.as_f64()) <= Some(first) {
            w.changed().await.unwrap();
        }
    })
    .await;
    drop(tick);
    assert_eq!(client.protocol(), "pva");
}

#[actix_rt::test]
async fn a_missing_pva_pv_fails_naming_it() {
    let ioc = Ioc::signals_pva(1);
    let client = pva(&ioc);
    let ghost = format!("pva://{}", ioc.pv("GHOST"));
    let err = within(
        30,
        "the failed connect",
        EpicsSignalRO::connect(client.as_ref(), "ghost", &ghost, 1.0),
    )
    .await
    .err()
    .expect("GHOST does not connect");
    assert!(
        err.to_string().contains(&format!("{ghost} (ghost)")),
        "{err}"
    );
}

#[actix_rt::test]
async fn a_pva_monitor_sees_its_server_go_and_come_back() {
    let mut ioc = Ioc::signals_pva(1);
    let client = pva(&ioc);
    let name = format!("pva://{}", ioc.pv("AO:00000"));
    let pv = within(
        20,
        "the PVA connect",
        connect_all(
            client.as_ref(),
            &[("ao".into(), name.clone())],
            Duration::from_secs(10),
        ),
    )
    .await
    .expect("connects")
    .remove(0);
    pv.put(&json!(3.0), None).await.expect("a put");
    let mut w = pv.watch();
    until_value(&mut w, json!(3.0), 10).await;
    ioc.kill();
    within(30, "the disconnect", async {
        while w.borrow().connected {
            w.changed().await.unwrap();
        }
    })
    .await;
    let err = pv.get().unwrap_err().to_string();
    assert!(err.contains(&name) && err.contains("disconnected"), "{err}");
    ioc.restart();
    // A new IOC: the record's initial value, through the same monitor.
    within(60, "the reconnect", async {
        loop {
            let s = w.borrow().clone();
            if s.connected && s.latest.as_ref().map(|u| &u.value) == Some(&json!(0.0)) {
                return;
            }
            w.changed().await.unwrap();
        }
    })
    .await;
    assert_eq!(pv.get().unwrap().value, json!(0.0));
}
