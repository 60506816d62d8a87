//! Suspensions (Bluesky's `request_suspend`, under its suspenders): the plan
//! is interrupted mid-scan, the pre-plan runs, the engine waits for the
//! condition, the post-plan runs, the plan rewinds to its last checkpoint and
//! finishes with every point read once; the trace shows the suspension.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{bounded, eventually, run, Docs, Traced};
use skyrun::{plan_stubs as bps, EngineState, ExitStatus, Plan, RunEngine, Suspender, Suspension};
use skyrun_actors::{
    sim::{SynAxis, SynSignal},
    DeviceHandle,
};

/// A 10-point step scan, slow enough to be suspended mid-way.
fn slow_scan(motor: DeviceHandle, det: DeviceHandle, points: Arc<AtomicUsize>) -> Plan {
    skyrun::preprocessors::run_wrapper(
        Plan::new("slow_scan", move |ctx| async move {
            for i in 0..10 {
                bps::checkpoint(&ctx).await?;
                bps::mv(&ctx, &[(&motor, i as f64)]).await?;
                bps::trigger_and_read(&ctx, &[&motor, &det], "primary").await?;
                points.fetch_add(1, Ordering::SeqCst);
                bps::sleep(&ctx, 0.02).await?;
            }
            Ok(())
        }),
        Default::default(),
    )
}

/// Starts `slow_scan` on `re`; the run, and the count of points read so far.
fn start_slow_scan(
    re: &RunEngine,
    motor: &DeviceHandle,
    det: &DeviceHandle,
) -> (
    tokio::task::JoinHandle<Result<skyrun::RunSummary, skyrun::RunError>>,
    Arc<AtomicUsize>,
) {
    let points = Arc::new(AtomicUsize::new(0));
    let (re, m, d, p) = (re.clone(), motor.clone(), det.clone(), points.clone());
    let handle = actix::spawn(async move { re.run(slow_scan(m, d, p)).await });
    (handle, points)
}

/// Every point read, in order; the point taken since the last checkpoint
/// is taken again (the rewind replays it, with its seq_num, as Bluesky's
/// does), and none is skipped.
fn assert_every_point_once(docs: &Docs) {
    let events = docs.events();
    let mut seq: Vec<u64> = events.iter().map(|e| e.seq_num).collect();
    assert!(
        seq.len() <= 11,
        "at most the one interrupted point again: {seq:?}"
    );
    for e in &events {
        assert_eq!(e.data["motor"].as_f64().unwrap(), (e.seq_num - 1) as f64);
    }
    seq.dedup();
    assert_eq!(seq, (1..=10).collect::<Vec<u64>>());
}

/// The justification of the one "Bluesky RunEngine suspend" span.
fn the_suspension(traced: &Traced) -> Option<String> {
    let spans = traced.spans();
    let suspend: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "Bluesky RunEngine suspend")
        .collect();
    assert_eq!(suspend.len(), 1, "one suspension in the trace");
    suspend[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "justification")
        .map(|kv| kv.value.as_str().into_owned())
}

/// Moves `shutter` to `to` (a suspension's pre- or post-plan).
fn move_shutter(shutter: DeviceHandle, to: f64) -> Plan {
    Plan::new("shutter", move |ctx| async move {
        bps::mv(&ctx, &[(&shutter, to)]).await
    })
}

#[test]
fn a_suspension_mid_scan_rewinds_and_every_point_is_read_once() {
    run(async {
        let traced = Traced::new();
        let re = traced.engine().build();
        let docs = Docs::subscribe(&re);
        let motor = traced.device(SynAxis::new("motor"));
        let det = traced.device(SynAxis::new("det"));
        let shutter = traced.device(SynAxis::new("shutter"));
        let (handle, points) = start_slow_scan(&re, &motor, &det);
        eventually("three points read", || points.load(Ordering::SeqCst) >= 3).await;
        let (beam_back, restored) = tokio::sync::oneshot::channel::<()>();
        let suspension = Suspension::until(async move {
            let _ = restored.await;
        })
        .pre_plan(move_shutter(shutter.clone(), -1.0))
        .post_plan(move_shutter(shutter.clone(), 1.0))
        .justification("ring current below 100 mA");
        re.request_suspend(suspension).await.expect("suspend");
        let at_suspend = points.load(Ordering::SeqCst);
        actix_rt::time::sleep(std::time::Duration::from_millis(60)).await;
        assert_eq!(
            points.load(Ordering::SeqCst),
            at_suspend,
            "no point is read while suspended"
        );
        assert_eq!(
            re.state(),
            EngineState::Running,
            "a suspension is not a pause"
        );
        beam_back.send(()).unwrap();
        let summary = bounded("the scan to finish", handle)
            .await
            .unwrap()
            .expect("the scan succeeds after the suspension");
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_every_point_once(&docs);
        // The shutter went through the pre-plan (-1) and the post-plan (+1).
        let moves: Vec<String> = traced
            .spans()
            .iter()
            .filter(|s| s.name == "Ophyd Status")
            .filter(|s| {
                s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "device_name" && kv.value.as_str() == "shutter")
            })
            .filter_map(|s| {
                s.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == "target")
                    .map(|kv| kv.value.as_str().into_owned())
            })
            .collect();
        assert_eq!(moves.len(), 2, "the shutter moved twice: {moves:?}");
        // The trace shows the suspension, with its justification.
        assert_eq!(
            the_suspension(&traced).as_deref(),
            Some("ring current below 100 mA")
        );
    });
}

#[test]
fn a_plan_without_a_checkpoint_is_aborted_when_suspended() {
    run(async {
        let re = skyrun::RunEngine::new();
        let docs = Docs::subscribe(&re);
        let re2 = re.clone();
        let handle = actix::spawn(async move {
            re2.run(skyrun::preprocessors::run_wrapper(
                Plan::new("no_checkpoint", |ctx| async move {
                    bps::clear_checkpoint(&ctx).await?;
                    bps::sleep(&ctx, 5.0).await
                }),
                Default::default(),
            ))
            .await
        });
        common::until(&re, EngineState::Running).await;
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        re.request_suspend(Suspension::until(std::future::pending()).justification("beam dump"))
            .await
            .expect("suspend");
        let err = bounded("the plan to end", handle)
            .await
            .unwrap()
            .unwrap_err();
        let skyrun::RunError::Aborted { summary } = err else {
            panic!("{err:?}")
        };
        assert_eq!(summary.exit_status, ExitStatus::Abort);
        assert!(
            summary.reason.contains("cannot suspend (beam dump)"),
            "{}",
            summary.reason
        );
        assert_eq!(docs.stops().len(), 1, "the stop document is emitted");
    });
}

/// Sets `signal` to `v` from outside the plan (the beam going away).
async fn put(signal: &DeviceHandle, v: f64) {
    let reply = signal
        .request(
            skyrun_actors::DeviceOp::Set(v.into()),
            &opentelemetry::Context::new(),
        )
        .await;
    assert!(reply.is_ok(), "{reply:?}");
}

#[test]
fn a_plan_submitted_while_a_suspender_is_tripped_starts_once_it_is_released() {
    run(async {
        let re = skyrun::RunEngine::new();
        let docs = Docs::subscribe(&re);
        let ring = DeviceHandle::spawn(SynSignal::new("ring_current", 50.0));
        let id = re
            .install_suspender(Suspender::floor(&ring, 100.0, 150.0).unwrap())
            .await
            .unwrap();
        eventually("the suspender to trip", || re.suspenders()[0].tripped).await;
        let (re2, ring2) = (re.clone(), ring.clone());
        let handle =
            actix::spawn(async move { re2.run(skyrun::plans::count(vec![ring2], 1, 0.0)).await });
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            docs.names().is_empty(),
            "the plan waits: {:?}",
            docs.names()
        );
        put(&ring, 160.0).await;
        bounded("the plan", handle)
            .await
            .unwrap()
            .expect("it runs once released");
        assert_eq!(docs.starts().len(), 1);
        assert!(re.remove_suspender(id));
        assert!(!re.remove_suspender(id));
        assert!(re.suspenders().is_empty());
    });
}

#[test]
fn thresholds_that_make_no_sense_are_refused_naming_the_signal() {
    run(async {
        let ring = DeviceHandle::spawn(SynSignal::new("ring_current", 400.0));
        let e = Suspender::floor(&ring, 100.0, 50.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "suspender on 'ring_current': the resume threshold (50) must be at or above the suspend threshold (100)"
        );
        assert!(Suspender::ceil(&ring, 10.0, 20.0).is_err());
        assert!(Suspender::in_band(&ring, 5.0, 5.0).is_err());
        // A device that cannot be subscribed to cannot be watched.
        let re = skyrun::RunEngine::new();
        let flyer = DeviceHandle::spawn(skyrun_actors::sim::SynFlyer::new("flyer", 3));
        let e = re
            .install_suspender(Suspender::bool_high(&flyer))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not support subscribe"), "{e}");
    });
}

#[test]
fn a_ring_current_below_the_floor_mid_scan_suspends_rewinds_and_resumes_after_the_sleep() {
    run(async {
        let traced = Traced::new();
        let re = traced.engine().build();
        let docs = Docs::subscribe(&re);
        let motor = traced.device(SynAxis::new("motor"));
        let det = traced.device(SynAxis::new("det"));
        let shutter = traced.device(SynAxis::new("shutter"));
        let ring = traced.device(SynSignal::new("ring_current", 400.0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (sh, c, shutter_now) = (shutter.clone(), closed.clone(), shutter.clone());
        let floor = Suspender::floor(&ring, 100.0, 150.0)
            .unwrap()
            .sleep(0.05)
            .pre_plan(move || {
                let (sh, c) = (sh.clone(), c.clone());
                Plan::new("close", move |ctx| async move {
                    bps::mv(&ctx, &[(&sh, -1.0)]).await?;
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .post_plan(move || move_shutter(shutter.clone(), 1.0));
        re.install_suspender(floor)
            .await
            .expect("the signal can be subscribed to");
        let (handle, points) = start_slow_scan(&re, &motor, &det);
        eventually("three points read", || points.load(Ordering::SeqCst) >= 3).await;
        put(&ring, 50.0).await;
        eventually("the pre-plan closed the shutter", || {
            closed.load(Ordering::SeqCst) == 1
        })
        .await;
        assert!(re.suspenders()[0].tripped);
        let at_suspend = points.load(Ordering::SeqCst);
        // Above the floor, below the resume threshold: still suspended.
        put(&ring, 120.0).await;
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            points.load(Ordering::SeqCst),
            at_suspend,
            "no point while suspended"
        );
        assert!(re.suspenders()[0].tripped);
        put(&ring, 200.0).await;
        let summary = bounded("the scan to finish", handle)
            .await
            .unwrap()
            .expect("the scan succeeds after the suspension");
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert!(!re.suspenders()[0].tripped, "released");
        // Every point is there, in order (the interrupted one retaken).
        assert_every_point_once(&docs);
        // One suspension in the trace, saying why.
        assert_eq!(
            the_suspension(&traced).as_deref(),
            Some("Signal ring_current = 50 is below 100")
        );
        // The post-plan reopened the shutter.
        let reply = shutter_now
            .request(
                skyrun_actors::DeviceOp::Position,
                &opentelemetry::Context::new(),
            )
            .await;
        assert!(
            matches!(&reply, Ok(skyrun_actors::DeviceReply::Position(p)) if *p == 1.0),
            "{reply:?}"
        );
    });
}

/// A device file's `[[suspender]]` table: parsed, built on the spawned
/// signal, installed, and it suspends and releases a scan as the Rust
/// `Suspender` does; a table that makes no sense names its line.
#[test]
fn a_device_files_suspender_suspends_and_releases_a_scan() {
    run(async {
        let set = skyrun::config::DeviceSet::parse(
            "[[motor]]\nname = \"motor\"\n[[motor]]\nname = \"det\"\n\
             [[signal]]\nname = \"ring_current\"\nvalue = 400.0\n\
             [[suspender]]\nsignal = \"ring_current\"\nbelow = 100.0\nresume_above = 150.0\nsleep = 0.05\nmessage = \"beam dump\"\n",
            "beamline.toml",
        )
        .expect("the device file");
        let traced = Traced::new();
        let re = traced.engine().build();
        let docs = Docs::subscribe(&re);
        let devices = set.spawn(skyrun_actors::SpanTracer::from_provider(
            &traced.provider,
            "ophyd.status",
        ));
        let (motor, det, ring) = (
            devices.get("motor").unwrap().clone(),
            devices.get("det").unwrap().clone(),
            devices.get("ring_current").unwrap().clone(),
        );
        let [spec] = set.suspenders() else {
            panic!("one suspender: {:?}", set.suspenders())
        };
        let floor = spec.build(&ring).expect("sensible thresholds");
        re.install_suspender(floor).await.expect("installed");
        let (handle, points) = start_slow_scan(&re, &motor, &det);
        eventually("two points read", || points.load(Ordering::SeqCst) >= 2).await;
        put(&ring, 50.0).await;
        eventually("the suspension", || re.suspenders()[0].tripped).await;
        put(&ring, 200.0).await;
        let summary = bounded("the scan to finish", handle)
            .await
            .unwrap()
            .expect("the scan succeeds after the suspension");
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_every_point_once(&docs);
        let why = the_suspension(&traced).expect("a suspension span");
        assert!(
            why.starts_with("Signal ring_current = 50 is below 100"),
            "{why}"
        );
        assert!(why.contains("beam dump"), "{why}");

        for (table, want) in [
            ("signal = \"ring_current\"\n", "needs one condition"),
            (
                "signal = \"ring_current\"\nbelow = 100.0\nresume_above = 50.0\n",
                "must be at or above",
            ),
            (
                "signal = \"ring_current\"\nbelow = 1.0\nabove = 2.0\n",
                "gives several conditions",
            ),
            ("signal = \"ring\"\nbelow = 1.0\n", "unknown device 'ring'"),
            (
                "signal = \"ring_current\"\nwhen = \"up\"\n",
                "expected \"high\" or \"low\"",
            ),
            (
                "signal = \"ring_current\"\nresume_below = 1.0\n",
                "resume_below is given without above",
            ),
        ] {
            let text = format!("[[signal]]\nname = \"ring_current\"\n[[suspender]]\n{table}");
            let err = skyrun::config::DeviceSet::parse(&text, "beamline.toml").unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("beamline.toml:"), "{msg}");
            assert!(msg.contains(want), "{msg} does not say {want}");
        }
    });
}

#[test]
fn a_suspension_asked_for_while_paused_is_carried_out_first_on_resume() {
    run(async {
        let re = skyrun::RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = DeviceHandle::spawn(SynAxis::new("motor"));
        let det = DeviceHandle::spawn(SynAxis::new("det"));
        let shutter = DeviceHandle::spawn(SynAxis::new("shutter"));
        let (handle, points) = start_slow_scan(&re, &motor, &det);
        eventually("two points read", || points.load(Ordering::SeqCst) >= 2).await;
        re.pause(false).await.expect("pause");
        common::until(&re, EngineState::Paused).await;
        // Asked while paused: nothing happens until the plan is resumed.
        let pre_ran = Arc::new(AtomicUsize::new(0));
        let seen = pre_ran.clone();
        let s2 = shutter.clone();
        let pre = Plan::new("close_shutter", move |ctx| async move {
            seen.fetch_add(1, Ordering::SeqCst);
            bps::mv(&ctx, &[(&s2, -1.0)]).await
        });
        re.request_suspend(
            Suspension::until(async {})
                .pre_plan(pre)
                .justification("beam dump"),
        )
        .await
        .expect("a suspension may be asked for while paused");
        actix_rt::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!(pre_ran.load(Ordering::SeqCst), 0, "not before the resume");
        assert_eq!(re.state(), EngineState::Paused);
        re.resume().await.expect("resume");
        let summary = bounded("the scan to finish", handle)
            .await
            .unwrap()
            .expect("the scan succeeds after the suspension");
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_eq!(pre_ran.load(Ordering::SeqCst), 1, "the pre-plan ran once");
        assert_every_point_once(&docs);
    });
}

#[test]
fn a_failing_pre_plan_of_a_suspension_asked_while_paused_fails_the_plan_with_its_error() {
    run(async {
        let re = skyrun::RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = DeviceHandle::spawn(SynAxis::new("motor"));
        let det = DeviceHandle::spawn(SynAxis::new("det"));
        let (handle, points) = start_slow_scan(&re, &motor, &det);
        eventually("one point read", || points.load(Ordering::SeqCst) >= 1).await;
        re.pause(false).await.expect("pause");
        common::until(&re, EngineState::Paused).await;
        let pre = Plan::new("broken", |_ctx| async move {
            Err(skyrun::PlanError::failed("shutter does not answer"))
        });
        re.request_suspend(Suspension::until(async {}).pre_plan(pre))
            .await
            .expect("suspend while paused");
        re.resume().await.expect("resume");
        let err = bounded("the plan to end", handle)
            .await
            .unwrap()
            .unwrap_err();
        let skyrun::RunError::Failed { summary, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(summary.exit_status, ExitStatus::Fail);
        assert!(
            summary.reason.contains("shutter does not answer"),
            "{}",
            summary.reason
        );
        assert_eq!(docs.stops().len(), 1, "the stop document is emitted");
    });
}
