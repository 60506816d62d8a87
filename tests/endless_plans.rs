//! A plan that never waits (every message answered at once) still gives the
//! engine's thread to its other work: pause, resume, stop and abort are
//! heard while it runs, and timers fire.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, eventually, run, Docs};
use skyrun::{plan_stubs as bps, EngineState, ExitStatus, Plan, RunEngine, RunError};

/// Opens a run, then sends `null` forever, counting.
fn endless(counter: Arc<AtomicUsize>) -> Plan {
    skyrun::preprocessors::run_wrapper(
        Plan::new("endless", move |ctx| async move {
            loop {
                bps::null(&ctx).await?;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }),
        Default::default(),
    )
}

#[test]
fn an_endless_plan_is_paused_resumed_and_aborted() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let n = Arc::new(AtomicUsize::new(0));
        let re2 = re.clone();
        let handle = actix::spawn({
            let n = n.clone();
            async move { re2.run(endless(n)).await }
        });
        eventually("the plan to send 10,000 messages", || {
            n.load(Ordering::Relaxed) >= 10_000
        })
        .await;
        bounded("the pause to be answered", re.pause(false))
            .await
            .expect("pause");
        eventually("the engine to pause", || re.state() == EngineState::Paused).await;
        let at_pause = n.load(Ordering::Relaxed);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            n.load(Ordering::Relaxed),
            at_pause,
            "a paused plan sends no more messages"
        );
        re.resume().await.expect("resume");
        eventually("the plan to go on after resume", || {
            n.load(Ordering::Relaxed) > at_pause + 10_000
        })
        .await;
        bounded("the abort to be answered", re.abort("endless"))
            .await
            .expect("abort");
        let err = bounded("the plan to end", handle)
            .await
            .unwrap()
            .unwrap_err();
        let RunError::Aborted { summary } = err else {
            panic!("{err:?}")
        };
        assert_eq!(summary.exit_status, ExitStatus::Abort);
        let stops = docs.stops();
        assert_eq!(stops.len(), 1, "the stop document is emitted");
        assert_eq!(stops[0].reason, "endless");
        assert_eq!(re.state(), EngineState::Idle);
    });
}

#[test]
fn timers_fire_and_stop_is_heard_while_an_endless_plan_runs() {
    run(async {
        let re = RunEngine::new();
        let n = Arc::new(AtomicUsize::new(0));
        let re2 = re.clone();
        let handle = actix::spawn({
            let n = n.clone();
            async move { re2.run(endless(n)).await }
        });
        // A timer on the engine's thread fires while the plan runs.
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        actix::spawn(async move {
            actix_rt::time::sleep(Duration::from_millis(20)).await;
            f.store(1, Ordering::SeqCst);
        });
        eventually("the timer to fire during the plan", || {
            fired.load(Ordering::SeqCst) == 1
        })
        .await;
        assert!(
            n.load(Ordering::Relaxed) > 0,
            "the plan was running when the timer fired"
        );
        bounded("the stop to be answered", re.stop())
            .await
            .expect("stop");
        let summary = bounded("the plan to end", handle).await.unwrap();
        let summary = match summary {
            Ok(s) => s,
            Err(e) => panic!("stop ends the plan with success: {e:?}"),
        };
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_eq!(re.state(), EngineState::Idle);
    });
}
