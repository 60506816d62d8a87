//! The engine's `monitor` / `unmonitor` on EPICS devices against real IOCs:
//! a plan monitoring pythonSoftIOC's 10 Hz record gets a monitor stream whose
//! values and timestamps are the IOC's, and none after `unmonitor`; a burst
//! of puts may be merged but its last value always arrives; an EpicsMotor's
//! subscription follows its readback (caproto motor record).

mod common;

use std::sync::{Arc, Mutex};

use common::{client, within, Ioc};
use opentelemetry::Context;
use serde_json::json;
use skyrun::documents::Document;
use skyrun::{plan_stubs as bps, Plan, PlanError, RunEngine};
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};
use skyrun_epics::{EpicsMotor, EpicsSignal, EpicsSignalRO, Pv, PvEvent};

type Docs = Arc<Mutex<Vec<Document>>>;

fn collect(re: &RunEngine) -> Docs {
    let docs: Docs = Arc::default();
    let sink = docs.clone();
    re.subscribe(move |_, d| sink.lock().unwrap().push(d.clone()));
    docs
}

/// `(value, timestamp)` of each event of `stream`, in order.
fn events(docs: &Docs, stream: &str) -> Vec<(serde_json::Value, f64)> {
    let docs = docs.lock().unwrap();
    let Some(desc) = docs.iter().find_map(|d| match d {
        Document::Descriptor(d) if d.name == stream => Some(d.uid.clone()),
        _ => None,
    }) else {
        return Vec::new();
    };
    let key = stream.trim_end_matches("_monitor");
    docs.iter()
        .filter_map(|d| match d {
            Document::Event(e) if e.descriptor == desc => {
                Some((e.data[key].clone(), e.timestamps[key]))
            }
            _ => None,
        })
        .collect()
}

/// Every update of `pv` from now on, as `(value, timestamp)`, gathered by a
/// watcher of its own (another monitor of the same record).
fn watch(pv: &Pv) -> Arc<Mutex<Vec<(serde_json::Value, f64)>>> {
    let seen: Arc<Mutex<Vec<_>>> = Arc::default();
    let (sink, mut rx) = (seen.clone(), pv.listen());
    pv.runtime().spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let PvEvent::Update(u) = ev {
                sink.lock().unwrap().push((u.value, u.timestamp));
            }
        }
    });
    seen
}

/// Sleeps in the plan (0.05 s at a time) until `done`, failing after `secs`.
async fn until(
    ctx: &skyrun::PlanCtx,
    secs: f64,
    what: &str,
    done: impl Fn() -> bool,
) -> Result<(), PlanError> {
    let t0 = std::time::Instant::now();
    while !done() {
        assert!(
            t0.elapsed().as_secs_f64() < secs,
            "{what}: not within {secs} s"
        );
        bps::sleep(ctx, 0.05).await?;
    }
    Ok(())
}

#[actix_rt::test]
async fn a_plan_monitoring_the_10_hz_record_records_the_iocs_values_until_unmonitor() {
    let ioc = Ioc::signals(1);
    let ca = client(&[&ioc]);
    let tick = EpicsSignalRO::connect(ca.as_ref(), "tick", &ioc.pv("TICK"), 5.0)
        .await
        .expect("TICK connects");
    let seen = watch(tick.read_pv());
    let tick = DeviceHandle::spawn(tick);
    let re = RunEngine::new();
    let docs = collect(&re);
    let (t, d, s) = (tick.clone(), docs.clone(), seen.clone());
    let at_unmonitor = Arc::new(Mutex::new(0usize));
    let n_at = at_unmonitor.clone();
    within(
        60,
        "the monitoring plan",
        re.run(Plan::new("watch_tick", move |ctx| async move {
            bps::open_run(&ctx, Default::default()).await?;
            bps::monitor(&ctx, &t, None).await?;
            until(&ctx, 20.0, "5 monitor events", || {
                events(&d, "tick_monitor").len() >= 5
            })
            .await?;
            bps::unmonitor(&ctx, &t).await?;
            *n_at.lock().unwrap() = events(&d, "tick_monitor").len();
            // The record keeps counting (3 more updates seen by the watcher);
            // the stream does not.
            let after = s.lock().unwrap().len() + 3;
            until(&ctx, 20.0, "3 more updates of TICK", || {
                s.lock().unwrap().len() >= after
            })
            .await?;
            bps::close_run(&ctx, None, None).await.map(|_| ())
        })),
    )
    .await
    .expect("the plan succeeds");

    let got = events(&docs, "tick_monitor");
    assert_eq!(
        got.len(),
        *at_unmonitor.lock().unwrap(),
        "no event after unmonitor: {got:?}"
    );
    assert!(got.len() >= 5, "{got:?}");
    // The IOC's values (a count) and timestamps (the record's TIME), in order.
    let values: Vec<f64> = got.iter().map(|(v, _)| v.as_f64().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert!(
        values.last() > values.first(),
        "the count went on: {values:?}"
    );
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "{got:?}");
    assert!(got.iter().all(|(_, ts)| *ts > 1.7e9), "{got:?}");
    // Each value the watcher saw too carries the very timestamp the IOC sent it with.
    let seen = seen.lock().unwrap();
    let mut matched = 0;
    for (v, ts) in &got {
        if let Some((_, wts)) = seen.iter().find(|(wv, _)| wv == v) {
            assert_eq!(ts, wts, "the timestamp of {v} is the IOC's");
            matched += 1;
        }
    }
    assert!(
        matched >= 1,
        "the stream {got:?} and the watcher {seen:?} share a value"
    );
    let last = values.last().copied().unwrap();
    assert!(
        seen.iter().any(|(v, _)| v.as_f64().unwrap() > last),
        "TICK went on after unmonitor ({last}): {seen:?}"
    );
    let docs = docs.lock().unwrap();
    let Some(Document::Stop(stop)) = docs.last() else {
        panic!("the run ends with a stop document")
    };
    assert_eq!(stop.num_events["tick_monitor"], got.len() as u64);
    let desc = docs
        .iter()
        .find_map(|d| match d {
            Document::Descriptor(d) if d.name == "tick_monitor" => Some(d),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        desc.data_keys["tick"].source,
        format!("PV:{}", ioc.pv("TICK"))
    );
    assert_eq!(desc.data_keys["tick"].units.as_deref(), Some("counts"));
}

#[actix_rt::test]
async fn the_last_value_of_a_burst_of_puts_always_arrives() {
    let ioc = Ioc::signals(1);
    let ca = client(&[&ioc]);
    let ao = EpicsSignal::connect(ca.as_ref(), "ao", &ioc.pv("AO:00000"), None, 5.0)
        .await
        .expect("AO connects");
    let writer = ao.write_pv().clone();
    let ao = DeviceHandle::spawn(ao);
    let re = RunEngine::new();
    let docs = collect(&re);
    let (a, d) = (ao.clone(), docs.clone());
    within(
        60,
        "the plan",
        re.run(Plan::new("burst", move |ctx| async move {
            bps::open_run(&ctx, Default::default()).await?;
            bps::monitor(&ctx, &a, None).await?;
            // 199 puts as fast as the client sends them, not awaiting
            // completion (0.5 .. 99.5: within the record's DRVL/DRVH).
            for k in 1..=199 {
                writer
                    .put(&json!(f64::from(k) / 2.0), None)
                    .await
                    .expect("the put is sent");
            }
            until(&ctx, 20.0, "the event of the last put", || {
                events(&d, "ao_monitor").last().map(|(v, _)| v.clone()) == Some(json!(99.5))
            })
            .await?;
            bps::unmonitor(&ctx, &a).await?;
            bps::close_run(&ctx, None, None).await.map(|_| ())
        })),
    )
    .await
    .expect("the plan succeeds");
    let values: Vec<f64> = events(&docs, "ao_monitor")
        .iter()
        .map(|(v, _)| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.first(), Some(&0.0), "the current value first");
    assert_eq!(values.last(), Some(&99.5));
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
}

#[actix_rt::test]
async fn a_motor_subscription_follows_the_readback() {
    let ioc = Ioc::motors(1, &["--velocity", "5"]);
    let ca = client(&[&ioc]);
    let m = EpicsMotor::connect(ca.as_ref(), "m1", &ioc.pv("MTR1"), 5.0)
        .await
        .expect("connects");
    let m = DeviceHandle::spawn(m);
    let mut sub = within(10, "subscribe", m.subscribe())
        .await
        .expect("an EpicsMotor is subscribable");
    let first = within(10, "the current reading", sub.next()).await.unwrap();
    assert_eq!(first["m1"].value, json!(0.0));
    assert!(first.contains_key("m1_user_setpoint"));
    let DeviceReply::Status(st) = within(
        10,
        "set",
        m.request(DeviceOp::Set(json!(1.0)), &Context::new()),
    )
    .await
    .unwrap() else {
        panic!("a set answers a status")
    };
    let mut readbacks = Vec::new();
    let last = within(20, "the readback at 1.0", async {
        loop {
            let r = sub.next().await.expect("the motor lives");
            readbacks.push(r["m1"].value.as_f64().unwrap());
            if readbacks.last() == Some(&1.0) {
                return r;
            }
        }
    })
    .await;
    assert_eq!(last["m1_user_setpoint"].value, json!(1.0));
    // Intermediate positions on the way (the IOC steps the readback).
    assert!(readbacks.len() >= 2, "{readbacks:?}");
    within(20, "the move", st.wait())
        .await
        .expect("the move succeeds");
    drop(m);
    let end = within(10, "the end of the subscription", async {
        loop {
            if sub.next().await.is_none() {
                return;
            }
        }
    });
    end.await;
}
