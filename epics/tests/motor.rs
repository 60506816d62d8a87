//! EpicsMotor against a real motor-record IOC (caproto, tests/iocs/motor_ioc.py).

mod common;

use std::time::Duration;

use common::{client, until_value, within, Ioc};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, Value as OtelValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::json;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply, SpanTracer, Status};
use skyrun_epics::{EpicsMotor, EpicsSignal};

async fn ask(h: &DeviceHandle, op: DeviceOp) -> Result<DeviceReply, DeviceError> {
    within(10, "a device request", h.request(op, &Context::new())).await
}

async fn set(h: &DeviceHandle, to: f64, cx: &Context) -> Status {
    match within(10, "set", h.request(DeviceOp::Set(json!(to)), cx)).await {
        Ok(DeviceReply::Status(s)) => s,
        other => panic!("{other:?}"),
    }
}

async fn read(h: &DeviceHandle) -> skyrun_actors::Readings {
    match ask(h, DeviceOp::Read).await.expect("read") {
        DeviceReply::Readings(r) => r,
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn a_move_is_done_at_dmov_1_and_its_span_shows_the_put_and_dmov() {
    let ioc = Ioc::motors(1, &["--velocity", "5"]);
    let ca = client(&[&ioc]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &ioc.pv("MTR1"), 5.0)
        .await
        .expect("connects");
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = SpanTracer::from_provider(&provider, "ophyd.status");
    let h = DeviceHandle::builder(m).tracer(tracer).spawn();

    let parent = provider.tracer("test").start("set m1");
    let cx = Context::current_with_span(parent);
    let st = set(&h, 2.0, &cx).await;
    within(20, "the move", st.wait())
        .await
        .expect("the move succeeds");
    let r = read(&h).await;
    assert_eq!(r["m1"].value, json!(2.0));
    assert_eq!(r["m1_user_setpoint"].value, json!(2.0));

    let spans = exporter.get_finished_spans().unwrap();
    let span = spans
        .iter()
        .find(|s| s.name == "Ophyd Status")
        .expect("a status span");
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr("status_type"), Some(OtelValue::from("MoveStatus")));
    assert_eq!(attr("target"), Some(OtelValue::F64(2.0)));
    assert_eq!(attr("start_pos"), Some(OtelValue::F64(0.0)));
    assert_eq!(attr("finish_pos"), Some(OtelValue::F64(2.0)));
    assert_eq!(attr("unit"), Some(OtelValue::from("mm")));
    assert_eq!(attr("positioner_name"), Some(OtelValue::from("m1")));
    assert_eq!(
        attr("setpoint_pv"),
        Some(OtelValue::from(ioc.pv("MTR1.VAL")))
    );
    let events: Vec<&str> = span.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["put", "DMOV 0", "DMOV 1"]);
    assert!(span.events[0].timestamp <= span.events[1].timestamp);
    assert!(span.events[1].timestamp <= span.events[2].timestamp);

    // Configuration as ophyd's EpicsMotor.
    let DeviceReply::Readings(c) = ask(&h, DeviceOp::ReadConfiguration).await.unwrap() else {
        panic!()
    };
    let keys: Vec<&str> = c.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "m1_user_offset",
            "m1_user_offset_dir",
            "m1_velocity",
            "m1_acceleration",
            "m1_motor_egu"
        ]
    );
    assert_eq!(c["m1_velocity"].value, json!(5.0));
    assert_eq!(c["m1_motor_egu"].value, json!("mm"));
}

#[actix_rt::test]
async fn limits_refuse_a_move_before_it_starts_and_stop_puts_stop() {
    let ioc = Ioc::motors(1, &[]);
    let ca = client(&[&ioc]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &ioc.pv("MTR1"), 5.0)
        .await
        .unwrap();
    let dmov = m.field("DMOV").expect("a DMOV field").clone();
    let h = DeviceHandle::spawn(m);
    let st = set(&h, 50.0, &Context::new()).await;
    let err = within(5, "the refused move", st.wait()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "m1: position 50 is outside the limits [-10, 10] ({}, {})",
            ioc.pv("MTR1.LLM"),
            ioc.pv("MTR1.HLM")
        )
    );
    assert_eq!(
        read(&h).await["m1_user_setpoint"].value,
        json!(0.0),
        "VAL untouched"
    );

    // A long move (9 mm at 1 mm/s), stopped once it has started.
    let mut watch = dmov.watch();
    let st = set(&h, 9.0, &Context::new()).await;
    until_value(&mut watch, json!(0), 10).await;
    ask(&h, DeviceOp::Stop { success: false }).await.unwrap();
    let err = within(5, "the stopped move", st.wait()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "m1 was stopped before the operation completed"
    );
    until_value(&mut watch, json!(1), 10).await;
    let pos = read(&h).await["m1"].value.as_f64().unwrap();
    assert!(pos < 9.0, "the motor stopped short of 9: at {pos}");
}

#[actix_rt::test]
async fn a_limit_switch_fails_the_move_naming_the_pv() {
    let ioc = Ioc::motors(1, &["--velocity", "5", "--switch-high", "1.0"]);
    let ca = client(&[&ioc]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &ioc.pv("MTR1"), 5.0)
        .await
        .unwrap();
    let h = DeviceHandle::spawn(m);
    let st = set(&h, 3.0, &Context::new()).await;
    let err = within(20, "the move", st.wait()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "m1: hit the high limit switch ({}) moving to 3",
            ioc.pv("MTR1.HLS")
        )
    );
}

#[actix_rt::test]
async fn an_ioc_killed_mid_move_fails_the_move_and_a_restarted_one_moves_again() {
    let mut ioc = Ioc::motors(1, &[]);
    let ca = client(&[&ioc]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &ioc.pv("MTR1"), 5.0)
        .await
        .unwrap();
    let dmov = m.field("DMOV").expect("a DMOV field").clone();
    let h = DeviceHandle::spawn(m);
    let mut watch = dmov.watch();
    let st = set(&h, 9.0, &Context::new()).await;
    until_value(&mut watch, json!(0), 10).await;
    ioc.kill();
    let err = within(30, "the failed move", st.wait()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "m1: lost PV '{}' (IOC 127.0.0.1:{}) during the move to 9",
            ioc.pv("MTR1.DMOV"),
            ioc.port
        )
    );
    // While the IOC is down a move fails at once, naming the PV.
    let st = set(&h, 1.0, &Context::new()).await;
    let err = within(5, "a move to a dead IOC", st.wait())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is disconnected"), "{err}");

    ioc.restart();
    within(60, "the reconnect", async {
        while !watch.borrow().connected {
            watch.changed().await.unwrap();
        }
    })
    .await;
    // Every field reconnects with DMOV; give the rest a moment, bounded.
    let st = within(30, "a move after the restart", async {
        loop {
            let st = set(&h, 0.5, &Context::new()).await;
            match st.wait().await {
                Err(e) if e.to_string().contains("disconnected") => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                r => break r,
            }
        }
    })
    .await;
    st.expect("the move after the restart succeeds");
    assert_eq!(read(&h).await["m1"].value, json!(0.5));
}

#[actix_rt::test]
async fn a_put_to_a_read_only_pv_is_refused_clearly() {
    let ioc = Ioc::motors(1, &[]);
    let ca = client(&[&ioc]);
    let rbv = EpicsSignal::connect(ca.as_ref(), "rbv", &ioc.pv("MTR1.RBV"), None, 5.0)
        .await
        .unwrap();
    let h = DeviceHandle::spawn(rbv);
    let err = ask(&h, DeviceOp::Set(json!(1.0))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "device 'rbv' rejected set: PV '{}' is read-only (IOC 127.0.0.1:{})",
            ioc.pv("MTR1.RBV"),
            ioc.port
        )
    );
}

#[actix_rt::test]
async fn a_moving_motor_locates_its_setpoint_and_its_readback() {
    // 1 mm/s: the 5 mm move takes 5 s, and is stopped long before.
    let ioc = Ioc::motors(1, &["--velocity", "1"]);
    let ca = client(&[&ioc]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &ioc.pv("MTR1"), 5.0)
        .await
        .expect("connects");
    let h = DeviceHandle::spawn(m);
    let _moving = set(&h, 5.0, &Context::new()).await;
    // VAL's monitor brings the new setpoint a moment after the put.
    let mut located = None;
    for _ in 0..100 {
        let reply = ask(&h, DeviceOp::Locate { gathered: false }).await.unwrap();
        let DeviceReply::Located { setpoint, readback } = reply else {
            panic!("{reply:?}")
        };
        if setpoint == json!(5.0) {
            located = Some(readback);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let readback = located.expect("locate answers the setpoint put (within 5 s)");
    let readback = readback.as_f64().expect("a number");
    assert!((0.0..5.0).contains(&readback), "mid-move: {readback}");
    ask(&h, DeviceOp::Stop { success: true })
        .await
        .expect("stop");
}
