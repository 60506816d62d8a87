//! Suspensions (Bluesky's `request_suspend`, under its suspenders): the plan
//! is interrupted mid-scan, the pre-plan runs, the engine waits for the
//! condition, the post-plan runs, the plan rewinds to its last checkpoint and
//! finishes with every point read once; the trace shows the suspension.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{bounded, eventually, run, Docs, Traced};
use opentelemetry::Value;
use skyrun::{plan_stubs as bps, EngineState, ExitStatus, Plan, Suspension};
use skyrun_actors::{sim::SynAxis, DeviceHandle};

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
        let points = Arc::new(AtomicUsize::new(0));
        let re2 = re.clone();
        let handle = actix::spawn({
            let (m, d, p) = (motor.clone(), det.clone(), points.clone());
            async move { re2.run(slow_scan(m, d, p)).await }
        });
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
        // Every point read, in order; the point taken since the last
        // checkpoint is taken again (the rewind replays it, with its seq_num,
        // as Bluesky's does), and none is skipped.
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
        let spans = traced.spans();
        let suspend: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "Bluesky RunEngine suspend")
            .collect();
        assert_eq!(suspend.len(), 1);
        assert!(suspend[0]
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "justification"
                && kv.value == Value::from("ring current below 100 mA")));
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
