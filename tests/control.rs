//! Pause (deferred and immediate), resume with rewind, abort, stop and halt;
//! the stop document on every exit path; the engine reusable afterwards.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{bounded, eventually, motor_det, run, until, Docs};
use skyrun::{
    plan_stubs as bps, plans, EngineState, ExitStatus, Interrupt, Plan, RunEngine, RunError,
};
use skyrun_actors::{sim::SynAxis, Device, DeviceHandle};

/// A plan that opens a run, then sleeps in steps of 20 ms with checkpoints, counting steps.
fn stepping(steps: usize, counter: Arc<AtomicUsize>) -> Plan {
    skyrun::preprocessors::run_wrapper(
        Plan::new("stepping", move |ctx| async move {
            for _ in 0..steps {
                bps::checkpoint(&ctx).await?;
                counter.fetch_add(1, Ordering::SeqCst);
                bps::sleep(&ctx, 0.02).await?;
            }
            Ok(())
        }),
        Default::default(),
    )
}

#[test]
fn abort_while_running_keeps_the_reason_in_the_stop_document() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let n = Arc::new(AtomicUsize::new(0));
        let re2 = re.clone();
        let handle = actix::spawn({
            let n = n.clone();
            async move { re2.run(stepping(1000, n)).await }
        });
        eventually("the plan to count 2", || n.load(Ordering::SeqCst) >= 2).await;
        re.abort("sample fell off").await.unwrap();
        let err = bounded("the plan to end", handle)
            .await
            .unwrap()
            .unwrap_err();
        let RunError::Aborted { summary } = err else {
            panic!("{err:?}")
        };
        assert_eq!(summary.exit_status, ExitStatus::Abort);
        assert_eq!(summary.reason, "sample fell off");
        assert_eq!(
            summary.interrupted,
            Some(Interrupt::Abort("sample fell off".into()))
        );
        let stops = docs.stops();
        assert_eq!(stops.len(), 1);
        assert_eq!(stops[0].exit_status, ExitStatus::Abort);
        assert_eq!(stops[0].reason, "sample fell off");
        assert_eq!(re.state(), EngineState::Idle);
        assert!(n.load(Ordering::SeqCst) < 1000);
        // Reusable.
        let (_m, det) = motor_det();
        re.run(plans::count(vec![det], 1, 0.0)).await.unwrap();
        assert_eq!(docs.stops()[1].exit_status, ExitStatus::Success);
    });
}

#[test]
fn stop_ends_with_success_and_runs_cleanup() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let n = Arc::new(AtomicUsize::new(0));
        let cleaned = Arc::new(AtomicUsize::new(0));
        let c = cleaned.clone();
        let plan = skyrun::preprocessors::finalize_wrapper(
            stepping(1000, n.clone()),
            Plan::new("cleanup", move |ctx| async move {
                bps::null(&ctx).await?;
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
        );
        let re2 = re.clone();
        let handle = actix::spawn(async move { re2.run(plan).await });
        eventually("the plan to count 2", || n.load(Ordering::SeqCst) >= 2).await;
        re.stop().await.unwrap();
        let summary = bounded("the plan to end", handle).await.unwrap().unwrap();
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_eq!(summary.interrupted, Some(Interrupt::Stop));
        assert_eq!(cleaned.load(Ordering::SeqCst), 1, "finalize cleanup ran");
        assert_eq!(docs.stops()[0].exit_status, ExitStatus::Success);
    });
}

#[test]
fn halt_drops_the_plan_without_cleanup_but_still_emits_stop() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let n = Arc::new(AtomicUsize::new(0));
        let cleaned = Arc::new(AtomicUsize::new(0));
        let c = cleaned.clone();
        let plan = skyrun::preprocessors::finalize_wrapper(
            stepping(1000, n.clone()),
            Plan::new("cleanup", move |_| async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
        );
        let re2 = re.clone();
        let handle = actix::spawn(async move { re2.run(plan).await });
        eventually("the plan to count 2", || n.load(Ordering::SeqCst) >= 2).await;
        re.halt().await.unwrap();
        let err = bounded("the plan to end", handle)
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, RunError::Aborted { .. }));
        assert_eq!(
            cleaned.load(Ordering::SeqCst),
            0,
            "halt gives no chance to clean up"
        );
        let stop = &docs.stops()[0];
        assert_eq!(
            (stop.exit_status, stop.reason.as_str()),
            (ExitStatus::Abort, "halted")
        );
    });
}

#[test]
fn deferred_pause_waits_for_a_checkpoint_and_resume_continues() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        // Each point settles for 50 ms, so the scan is still running when the
        // pause is asked for (a zero-delay scan could end first).
        let motor = SynAxis::new("motor").with_settle_time(0.05);
        let det = skyrun_actors::sim::SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
        let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));
        let re2 = re.clone();
        let handle =
            actix::spawn(
                async move { re2.run(plans::scan(vec![det], &motor, 0.0, 1.0, 50)).await },
            );
        until(&re, EngineState::Running).await;
        re.pause(true).await.unwrap();
        until(&re, EngineState::Paused).await;
        let events_when_paused = docs.events().len();
        assert!(events_when_paused < 50);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!(
            docs.events().len(),
            events_when_paused,
            "nothing happens while paused"
        );
        assert_eq!(
            re.pause(false).await.unwrap_err().to_string(),
            "cannot pause while the RunEngine is paused"
        );
        re.resume().await.unwrap();
        let summary = bounded("the plan to end", handle).await.unwrap().unwrap();
        assert_eq!(summary.exit_status, ExitStatus::Success);
        let events = docs.events();
        assert_eq!(events.len(), 50, "a pause at a checkpoint replays nothing");
        let seq: Vec<u64> = events.iter().map(|e| e.seq_num).collect();
        assert_eq!(seq, (1..=50).collect::<Vec<_>>());
    });
}

/// A motor that counts the sets it receives and takes 200 ms per move.
struct CountingMotor {
    inner: SynAxis,
    sets: Arc<AtomicUsize>,
}

impl skyrun_actors::Device for CountingMotor {
    fn name(&self) -> &str {
        "counted"
    }
    fn type_name(&self) -> &'static str {
        "CountingMotor"
    }
    fn readable(&mut self) -> Option<&mut dyn skyrun_actors::Readable> {
        self.inner.readable()
    }
    fn movable(&mut self) -> Option<&mut dyn skyrun_actors::Movable> {
        Some(self)
    }
    fn stoppable(&mut self) -> Option<&mut dyn skyrun_actors::Stoppable> {
        self.inner.stoppable()
    }
}

impl skyrun_actors::Movable for CountingMotor {
    fn set(
        &mut self,
        value: &serde_json::Value,
        ctx: &skyrun_actors::DeviceContext,
    ) -> Result<skyrun_actors::Status, skyrun_actors::DeviceError> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.inner.movable().unwrap().set(value, ctx)
    }
    fn position(&self) -> serde_json::Value {
        self.inner.position()
    }
}

#[test]
fn immediate_pause_interrupts_a_wait_and_resume_rewinds_to_the_checkpoint() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let sets = Arc::new(AtomicUsize::new(0));
        let motor = DeviceHandle::spawn(CountingMotor {
            inner: SynAxis::new("counted").with_velocity(25.0),
            sets: sets.clone(),
        });
        let m = motor.clone();
        let plan = skyrun::preprocessors::run_wrapper(
            Plan::new("rewind", move |ctx| async move {
                bps::checkpoint(&ctx).await?;
                bps::trigger_and_read(&ctx, std::slice::from_ref(&m), "primary").await?;
                bps::checkpoint(&ctx).await?;
                bps::abs_set(&ctx, &m, 5.0, Some("g"), false).await?; // 200 ms
                bps::wait_group(&ctx, Some("g")).await?;
                bps::trigger_and_read(&ctx, std::slice::from_ref(&m), "primary").await?;
                Ok(())
            }),
            Default::default(),
        );
        let re2 = re.clone();
        let handle = actix::spawn(async move { re2.run(plan).await });
        eventually("the plan to count 1", || sets.load(Ordering::SeqCst) >= 1).await;
        re.pause(false).await.unwrap();
        until(&re, EngineState::Paused).await;
        assert_eq!(docs.events().len(), 1);
        re.resume().await.unwrap();
        bounded("the plan to end", handle).await.unwrap().unwrap();
        assert_eq!(
            sets.load(Ordering::SeqCst),
            2,
            "the set since the checkpoint was replayed"
        );
        let events = docs.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].seq_num, 2);
        assert_eq!(events[1].data["counted"], serde_json::json!(5.0));
    });
}

#[test]
fn abort_while_paused_and_control_errors() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        assert_eq!(
            re.resume().await.unwrap_err().to_string(),
            "cannot resume while the RunEngine is idle"
        );
        assert_eq!(
            re.abort("x").await.unwrap_err().to_string(),
            "cannot abort while the RunEngine is idle"
        );
        let n = Arc::new(AtomicUsize::new(0));
        let re2 = re.clone();
        let handle = actix::spawn({
            let n = n.clone();
            async move { re2.run(stepping(1000, n)).await }
        });
        eventually("the plan to count 1", || n.load(Ordering::SeqCst) >= 1).await;
        re.pause(false).await.unwrap();
        until(&re, EngineState::Paused).await;
        re.abort("operator decided").await.unwrap();
        let RunError::Aborted { summary } = bounded("the plan to end", handle)
            .await
            .unwrap()
            .unwrap_err()
        else {
            panic!()
        };
        assert_eq!(summary.reason, "operator decided");
        assert_eq!(docs.stops()[0].reason, "operator decided");
        assert_eq!(re.state(), EngineState::Idle);
    });
}

#[test]
fn a_plan_can_pause_itself_and_be_resumed() {
    run(async {
        let re = RunEngine::new();
        let reached = Arc::new(AtomicUsize::new(0));
        let r = reached.clone();
        let re2 = re.clone();
        let handle = actix::spawn(async move {
            re2.run(Plan::new("self pause", move |ctx| async move {
                bps::pause(&ctx, false).await?;
                r.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
            .await
        });
        until(&re, EngineState::Paused).await;
        assert_eq!(reached.load(Ordering::SeqCst), 0);
        re.resume().await.unwrap();
        bounded("the plan to end", handle).await.unwrap().unwrap();
        assert_eq!(reached.load(Ordering::SeqCst), 1);
    });
}

/// The replay hook sees each message a rewind replays (the plan does not
/// send them again), with the origin the front end gave it.
#[test]
fn the_replay_hook_sees_the_messages_a_rewind_replays() {
    run(async {
        let re = RunEngine::new();
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s = seen.clone();
        re.set_replay_hook(Some(Arc::new(move |m: &skyrun::Msg| {
            let origin = m
                .origin
                .as_ref()
                .and_then(|o| o.downcast_ref::<&'static str>())
                .copied();
            s.lock().push((m.command.as_str().to_owned(), origin));
        })));
        let re2 = re.clone();
        let handle = actix::spawn(async move {
            re2.run(Plan::new("rewinds", move |ctx| async move {
                bps::checkpoint(&ctx).await?;
                let mut null = skyrun::Msg::null();
                null.origin = Some(Arc::new("the first null"));
                ctx.send(null).await?;
                ctx.send(skyrun::Msg::null()).await?;
                bps::pause(&ctx, false).await?;
                ctx.send(skyrun::Msg::null()).await?;
                Ok(())
            }))
            .await
        });
        until(&re, EngineState::Paused).await;
        assert!(
            seen.lock().is_empty(),
            "nothing is replayed before the resume"
        );
        re.resume().await.unwrap();
        bounded("the plan to end", handle).await.unwrap().unwrap();
        assert_eq!(
            *seen.lock(),
            [
                ("null".to_owned(), Some("the first null")),
                ("null".to_owned(), None)
            ]
        );
    });
}

/// A detector told of pauses (Bluesky's Pausable), which may refuse the replay.
struct Camera {
    replay: skyrun_actors::Replay,
    calls: Arc<parking_lot::Mutex<Vec<&'static str>>>,
}

impl Device for Camera {
    fn name(&self) -> &str {
        "camera"
    }
    fn type_name(&self) -> &'static str {
        "Camera"
    }
    fn pausable(&mut self) -> Option<&mut dyn skyrun_actors::Pausable> {
        Some(self)
    }
}

impl skyrun_actors::Pausable for Camera {
    fn pause(&mut self) -> Result<skyrun_actors::Replay, skyrun_actors::DeviceError> {
        self.calls.lock().push("pause");
        Ok(self.replay)
    }
    fn resume(&mut self) -> Result<(), skyrun_actors::DeviceError> {
        self.calls.lock().push("resume");
        Ok(())
    }
}

/// A pausable device named by the plan is told of the pause and the resume;
/// one that refuses the replay makes the plan go on where it paused, as
/// Bluesky's NoReplayAllowed does.
#[test]
fn pausable_devices_are_told_and_may_refuse_the_replay() {
    for (replay, replayed) in [
        (skyrun_actors::Replay::Allowed, 1),
        (skyrun_actors::Replay::NotAllowed, 0),
    ] {
        run(async move {
            let re = RunEngine::new();
            let calls = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let cam = DeviceHandle::spawn(Camera {
                replay,
                calls: calls.clone(),
            });
            let seen = Arc::new(AtomicUsize::new(0));
            let s = seen.clone();
            re.set_replay_hook(Some(Arc::new(move |_: &skyrun::Msg| {
                s.fetch_add(1, Ordering::SeqCst);
            })));
            let re2 = re.clone();
            let handle = actix::spawn(async move {
                re2.run(Plan::new("pauses", move |ctx| async move {
                    bps::checkpoint(&ctx).await?;
                    ctx.send(skyrun::Msg::null().obj(&cam)).await?;
                    bps::pause(&ctx, false).await?;
                    Ok(())
                }))
                .await
            });
            until(&re, EngineState::Paused).await;
            eventually("the camera to be told of the pause", || {
                calls.lock().as_slice() == ["pause"]
            })
            .await;
            re.resume().await.unwrap();
            bounded("the plan to end", handle).await.unwrap().unwrap();
            assert_eq!(*calls.lock(), ["pause", "resume"]);
            assert_eq!(seen.load(Ordering::SeqCst), replayed, "{replay:?}");
        });
    }
}

#[test]
fn abort_stops_moving_devices_and_unstages() {
    run(async {
        let re = RunEngine::new();
        let slow = SynAxis::new("slow").with_velocity(1.0);
        let probe = slow.probe();
        let slow = DeviceHandle::spawn(slow);
        let s = slow.clone();
        let plan = skyrun::preprocessors::stage_wrapper(
            Plan::new("long move", move |ctx| async move {
                bps::mv(&ctx, &[(&s, 100.0)]).await
            }),
            vec![slow.clone()],
        );
        let re2 = re.clone();
        let handle = actix::spawn(async move { re2.run(plan).await });
        until(&re, EngineState::Running).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        re.abort("too slow").await.unwrap();
        assert!(bounded("the plan to end", handle).await.unwrap().is_err());
        let here = probe.position();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(probe.position(), here, "the motor was stopped");
        assert!(here < 100.0);
    });
}

#[test]
fn a_plan_wrapped_not_rewindable_resumes_where_it_paused() {
    run(async {
        // Rewindable (the default), the pause replays the reading since the
        // checkpoint; not rewindable (Bluesky's rewindable_wrapper), it does not.
        for (rewindable, events) in [(true, 3), (false, 2)] {
            let re = RunEngine::new();
            let docs = Docs::subscribe(&re);
            let (_, det) = motor_det();
            let plan = skyrun::preprocessors::run_wrapper(
                Plan::new("pauses", move |ctx| async move {
                    bps::checkpoint(&ctx).await?;
                    bps::trigger_and_read(&ctx, &[&det], "primary").await?;
                    bps::pause(&ctx, false).await?;
                    bps::trigger_and_read(&ctx, &[&det], "primary").await?;
                    Ok(())
                }),
                Default::default(),
            );
            let plan = skyrun::preprocessors::rewindable_wrapper(plan, rewindable);
            let re2 = re.clone();
            let handle = actix::spawn(async move { re2.run(plan).await });
            until(&re, EngineState::Paused).await;
            re.resume().await.unwrap();
            bounded("the plan to end", handle).await.unwrap().unwrap();
            assert_eq!(docs.events().len(), events, "rewindable: {rewindable}");
            // The engine's setting is restored.
            let asked = re
                .run(Plan::new("asks", |ctx| async move {
                    assert!(bps::rewindable(&ctx, None).await?);
                    Ok(())
                }))
                .await;
            asked.unwrap();
        }
    });
}

/// With `record_interruptions`, a run's pauses and resumes are events of its
/// stream `interruptions` (Bluesky's), its descriptor right after the start
/// document; without it, nothing is recorded.
#[test]
fn interruptions_are_recorded_as_a_stream_when_asked() {
    for record in [false, true] {
        run(async move {
            let re = RunEngine::new();
            re.set_record_interruptions(record).await.unwrap();
            let docs = Docs::subscribe(&re);
            let re2 = re.clone();
            let handle = actix::spawn(async move {
                re2.run(Plan::new("pauses", |ctx| async move {
                    bps::open_run(&ctx, Default::default()).await?;
                    bps::pause(&ctx, false).await?;
                    bps::close_run(&ctx, None, None).await?;
                    Ok(())
                }))
                .await
            });
            until(&re, EngineState::Paused).await;
            re.resume().await.unwrap();
            bounded("the plan to end", handle).await.unwrap().unwrap();
            let names = docs.names();
            let recorded: Vec<String> = docs
                .events()
                .iter()
                .map(|e| e.data["interruption"].as_str().unwrap().to_owned())
                .collect();
            if record {
                assert_eq!(names, ["start", "descriptor", "event", "event", "stop"]);
                assert_eq!(recorded, ["pause", "resume"]);
                let Some(skyrun::Document::Descriptor(d)) = docs.all().get(1).cloned() else {
                    panic!("no descriptor")
                };
                assert_eq!(d.name, "interruptions");
                assert_eq!(d.data_keys["interruption"].dtype, "string");
                assert_eq!(docs.stops()[0].num_events["interruptions"], 2);
            } else {
                assert_eq!(names, ["start", "stop"]);
            }
        });
    }
}

/// Bluesky's FailedPause: a plan that cleared its checkpoint cannot be
/// resumed, so a pause aborts it (it cleans up; the stop document says why).
#[test]
fn a_pause_after_clear_checkpoint_aborts_the_plan() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let cleaned = Arc::new(AtomicUsize::new(0));
        let c = cleaned.clone();
        let plan = skyrun::preprocessors::run_wrapper(
            Plan::new("unresumable", move |ctx| async move {
                bps::clear_checkpoint(&ctx).await?;
                let r = bps::pause(&ctx, false).await;
                if matches!(r, Err(skyrun::PlanError::Interrupted(_))) {
                    c.fetch_add(1, Ordering::SeqCst);
                }
                r
            }),
            Default::default(),
        );
        let err = bounded("the plan to end", re.run(plan)).await.unwrap_err();
        let RunError::Aborted { summary } = err else {
            panic!("{err:?}")
        };
        assert_eq!(summary.exit_status, ExitStatus::Abort);
        assert_eq!(summary.reason, "no checkpoint to rewind to: cannot pause");
        assert_eq!(cleaned.load(Ordering::SeqCst), 1, "the plan saw the abort");
        assert_eq!(docs.stops().len(), 1);
        assert_eq!(re.state(), EngineState::Idle);
        // The next plan pauses as usual: the checkpoint state is per plan.
        let re2 = re.clone();
        let handle = actix::spawn(async move {
            re2.run(Plan::new("pausing", |ctx| async move {
                bps::pause(&ctx, false).await
            }))
            .await
        });
        until(&re, EngineState::Paused).await;
        re.resume().await.unwrap();
        bounded("the plan to end", handle).await.unwrap().unwrap();
    });
}
