//! Failing devices and subscribers: the run fails cleanly with a reason that
//! names the device and the command, the stop document is emitted, and the
//! engine runs the next plan normally.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{failed, motor_det, run, Docs};
use serde_json::Value;
use skyrun::{plan_stubs as bps, plans, preprocessors::run_wrapper, ExitStatus, Plan, RunEngine};
use skyrun_actors::{
    sim::SynAxis, Device, DeviceContext, DeviceError, DeviceHandle, Movable, Status,
};

/// A motor whose `set` panics when asked to go to 13.
struct Superstitious(SynAxis);

impl Device for Superstitious {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn type_name(&self) -> &'static str {
        "Superstitious"
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
}

impl Movable for Superstitious {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        if value.as_f64() == Some(13.0) {
            panic!("unlucky number");
        }
        self.0.movable().unwrap().set(value, ctx)
    }
    fn position(&self) -> Value {
        self.0.position()
    }
}

fn move_to(m: &DeviceHandle, x: f64) -> Plan {
    let m = m.clone();
    run_wrapper(
        Plan::new(
            "move",
            move |ctx| async move { bps::mv(&ctx, &[(&m, x)]).await },
        ),
        Default::default(),
    )
}

#[test]
fn a_panicking_device_fails_the_run_and_the_engine_goes_on() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let m = DeviceHandle::spawn(Superstitious(SynAxis::new("m13")));
        let (msg, summary) = failed(re.run(move_to(&m, 13.0)).await.unwrap_err());
        assert_eq!(
            msg,
            "set on m13: device 'm13' panicked during set: unlucky number"
        );
        assert_eq!(summary.exit_status, ExitStatus::Fail);
        let stop = &docs.stops()[0];
        assert_eq!(
            (stop.exit_status, stop.reason.as_str()),
            (ExitStatus::Fail, msg.as_str())
        );
        // The actor stopped: the next request says so.
        let (msg, _) = failed(re.run(move_to(&m, 1.0)).await.unwrap_err());
        assert_eq!(
            msg,
            "set on m13: device 'm13' is not running (its actor has stopped); cannot set"
        );
        // Other plans run normally.
        let (_motor, det) = motor_det();
        re.run(plans::count(vec![det], 2, 0.0)).await.unwrap();
        assert_eq!(
            docs.stops().last().unwrap().exit_status,
            ExitStatus::Success
        );
    });
}

#[test]
fn a_supervised_device_is_restarted_after_a_panic() {
    run(async {
        let re = RunEngine::new();
        let m = DeviceHandle::supervised(|| Superstitious(SynAxis::new("sup"))).spawn();
        let (msg, _) = failed(re.run(move_to(&m, 13.0)).await.unwrap_err());
        assert!(msg.contains("panicked during set: unlucky number"), "{msg}");
        re.run(move_to(&m, 2.0))
            .await
            .expect("the restarted device moves");
        assert!(m.is_running());
    });
}

/// A device whose set never answers (its handler blocks its own thread).
struct Mute;

impl Device for Mute {
    fn name(&self) -> &str {
        "mute"
    }
    fn type_name(&self) -> &'static str {
        "Mute"
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
}

impl Movable for Mute {
    fn set(&mut self, _: &Value, _: &DeviceContext) -> Result<Status, DeviceError> {
        std::thread::sleep(Duration::from_millis(500));
        Ok(Status::finished())
    }
    fn position(&self) -> Value {
        Value::Null
    }
}

#[test]
fn a_device_that_never_answers_fails_the_run_after_the_request_timeout() {
    run(async {
        let re = RunEngine::builder()
            .request_timeout(Some(Duration::from_millis(50)))
            .build();
        let docs = Docs::subscribe(&re);
        let arbiter = actix::Arbiter::new();
        let mute = DeviceHandle::builder(Mute)
            .arbiter(arbiter.handle())
            .spawn();
        let (msg, _) = failed(re.run(move_to(&mute, 1.0)).await.unwrap_err());
        assert_eq!(
            msg,
            "set on mute: device 'mute' did not answer set within 0.05 s"
        );
        assert_eq!(docs.stops()[0].exit_status, ExitStatus::Fail);
        let (_motor, det) = motor_det();
        re.run(plans::count(vec![det], 1, 0.0)).await.unwrap();
        arbiter.stop();
    });
}

#[test]
fn a_status_that_never_completes_times_out_when_a_timeout_was_given() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        // 1 unit/s to 1000: would take 17 minutes; the status timeout is 50 ms.
        let m = DeviceHandle::spawn(
            SynAxis::new("crawler")
                .with_velocity(1.0)
                .with_timeout(0.05),
        );
        let (msg, _) = failed(re.run(move_to(&m, 1000.0)).await.unwrap_err());
        assert_eq!(msg, "set on crawler failed: status timed out after 0.05 s");
        assert_eq!(docs.stops()[0].reason, msg);
    });
}

#[test]
fn a_panicking_subscriber_is_reported_and_dropped_not_fatal() {
    run(async {
        let re = RunEngine::new();
        let good = Docs::subscribe(&re);
        re.subscribe(|name, _| {
            if name == "descriptor" {
                panic!("subscriber bug");
            }
        });
        let after = Docs::subscribe(&re);
        let (_m, det) = motor_det();
        re.run(plans::count(vec![det.clone()], 3, 0.0))
            .await
            .unwrap();
        assert_eq!(
            good.names(),
            ["start", "descriptor", "event", "event", "event", "stop"]
        );
        assert_eq!(
            after.names(),
            good.names(),
            "later subscribers still get everything"
        );
        let reports = re.removed_subscribers();
        assert_eq!(reports.len(), 1);
        assert!(
            reports[0]
                .contains("panicked on a 'descriptor' document and was removed: subscriber bug"),
            "{}",
            reports[0]
        );
        re.run(plans::count(vec![det], 1, 0.0)).await.unwrap();
        assert_eq!(good.names().len(), 10);
    });
}

#[test]
fn a_slow_subscriber_gets_every_document_in_order_through_a_bounded_buffer() {
    run(async {
        let re = RunEngine::builder().document_buffer(4).build();
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let order = Docs::subscribe(&re);
        re.subscribe(move |_, _| {
            std::thread::sleep(Duration::from_millis(2));
            s.fetch_add(1, Ordering::SeqCst);
        });
        let (_m, det) = motor_det();
        re.run(plans::count(vec![det], 20, 0.0)).await.unwrap();
        // run() returns once every document has been delivered.
        assert_eq!(seen.load(Ordering::SeqCst), 23);
        let seq: Vec<u64> = order.events().iter().map(|e| e.seq_num).collect();
        assert_eq!(seq, (1..=20).collect::<Vec<_>>());
    });
}

#[test]
fn a_device_stopped_mid_plan_fails_the_run_with_its_name() {
    run(async {
        let re = RunEngine::new();
        let arbiter = actix::Arbiter::new();
        let m = DeviceHandle::builder(SynAxis::new("gone"))
            .arbiter(arbiter.handle())
            .spawn();
        re.run(move_to(&m, 1.0)).await.unwrap();
        arbiter.stop();
        arbiter.join().ok();
        let (msg, _) = failed(re.run(move_to(&m, 2.0)).await.unwrap_err());
        assert_eq!(
            msg,
            "set on gone: device 'gone' is not running (its actor has stopped); cannot set"
        );
    });
}

/// A motor that takes 2 ms to accept each set and counts what it handled.
struct Sluggish {
    inner: SynAxis,
    handled: Arc<AtomicUsize>,
}

impl Device for Sluggish {
    fn name(&self) -> &str {
        "sluggish"
    }
    fn type_name(&self) -> &'static str {
        "Sluggish"
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
}

impl Movable for Sluggish {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        std::thread::sleep(Duration::from_millis(2));
        self.handled.fetch_add(1, Ordering::SeqCst);
        self.inner.movable().unwrap().set(value, ctx)
    }
    fn position(&self) -> Value {
        self.inner.position()
    }
}

#[test]
fn a_plan_faster_than_its_device_is_held_back_to_the_device_pace() {
    run(async {
        let re = RunEngine::new();
        let handled = Arc::new(AtomicUsize::new(0));
        let arbiter = actix::Arbiter::new();
        let dev = DeviceHandle::builder(Sluggish {
            inner: SynAxis::new("sluggish"),
            handled: handled.clone(),
        })
        .arbiter(arbiter.handle())
        .mailbox(4)
        .spawn();
        let h = handled.clone();
        re.run(Plan::new("flood", move |ctx| async move {
            // Fire-and-forget sets, as fast as the plan can: each one returns
            // only once the device has taken it, so nothing piles up.
            for i in 0..50 {
                bps::abs_set(&ctx, &dev, i as f64, Some("g"), false).await?;
                assert_eq!(
                    h.load(Ordering::SeqCst),
                    i + 1,
                    "the plan never runs ahead of the device"
                );
            }
            bps::wait_group(&ctx, Some("g")).await
        }))
        .await
        .unwrap();
        assert_eq!(handled.load(Ordering::SeqCst), 50);
        arbiter.stop();
    });
}
