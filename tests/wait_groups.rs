//! `wait(group)` and `wait()` semantics, as Bluesky's: a group waits for its
//! statuses only, `wait()` for the ungrouped ones, and a failure in the group
//! fails the wait as soon as it happens.

mod common;

use std::time::Instant;

use common::run;
use skyrun::{plan_stubs as bps, Msg, Plan, Reply, RunEngine, RunError};
use skyrun_actors::{sim::SynAxis, DeviceHandle};

#[test]
fn a_group_waits_only_for_its_own_statuses() {
    run(async {
        let re = RunEngine::new();
        let slow = DeviceHandle::spawn(SynAxis::new("slow").with_velocity(10.0)); // 1 unit = 100 ms
        let fast = DeviceHandle::spawn(SynAxis::new("fast"));
        let (s, f) = (slow.clone(), fast.clone());
        re.run(Plan::new("groups", move |ctx| async move {
            let Reply::Status(slow_st) = ctx
                .send(Msg::new("set").obj(&s).arg(1.0).group("slow"))
                .await?
            else {
                unreachable!()
            };
            let Reply::Status(fast_st) = ctx
                .send(Msg::new("set").obj(&f).arg(1.0).group("fast"))
                .await?
            else {
                unreachable!()
            };
            ctx.send(Msg::new("wait").group("fast")).await?;
            assert!(fast_st.done());
            assert!(
                !slow_st.done(),
                "waiting on 'fast' must not wait for 'slow'"
            );
            ctx.send(Msg::new("wait").group("slow")).await?;
            assert!(slow_st.done() && slow_st.success());
            Ok(())
        }))
        .await
        .unwrap();
    });
}

#[test]
fn wait_without_group_waits_for_the_ungrouped_ones_only() {
    run(async {
        let re = RunEngine::new();
        let slow = DeviceHandle::spawn(SynAxis::new("slow").with_velocity(10.0));
        let other = DeviceHandle::spawn(SynAxis::new("other").with_velocity(10.0));
        let (s, o) = (slow.clone(), other.clone());
        re.run(Plan::new("ungrouped", move |ctx| async move {
            let Reply::Status(grouped) = ctx
                .send(Msg::new("set").obj(&o).arg(2.0).group("A"))
                .await?
            else {
                unreachable!()
            };
            let Reply::Status(ungrouped) = ctx.send(Msg::new("set").obj(&s).arg(0.5)).await? else {
                unreachable!()
            };
            ctx.send(Msg::new("wait")).await?;
            assert!(ungrouped.done());
            assert!(
                !grouped.done(),
                "wait() must not wait for group A (a 200 ms move)"
            );
            // An empty group returns at once.
            ctx.send(Msg::new("wait").group("nobody")).await?;
            ctx.send(Msg::new("wait").group("A")).await?;
            assert!(grouped.done());
            Ok(())
        }))
        .await
        .unwrap();
    });
}

#[test]
fn a_failure_in_a_group_fails_the_wait_without_waiting_for_the_rest() {
    run(async {
        let re = RunEngine::new();
        let slow = DeviceHandle::spawn(SynAxis::new("slow").with_velocity(1.0)); // 5 s move
        let limited = DeviceHandle::spawn(SynAxis::new("limited").with_limits(0.0, 1.0));
        let (s, l) = (slow.clone(), limited.clone());
        let t0 = Instant::now();
        let err = re
            .run(Plan::new("fail fast", move |ctx| async move {
                ctx.send(Msg::new("set").obj(&s).arg(5.0).group("G"))
                    .await?;
                ctx.send(Msg::new("set").obj(&l).arg(3.0).group("G"))
                    .await?;
                ctx.send(Msg::new("wait").group("G")).await?;
                Ok(())
            }))
            .await
            .unwrap_err();
        let RunError::Failed { error, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            error.to_string(),
            "set on limited failed: limited: position 3 is outside the limits [0, 1]"
        );
        // Not a timing assertion on performance: the 5 s move must not have been waited for.
        assert!(t0.elapsed().as_secs_f64() < 4.0);
    });
}

#[test]
fn wait_with_a_timeout_fails_with_a_clear_reason() {
    run(async {
        let re = RunEngine::new();
        let slow = DeviceHandle::spawn(SynAxis::new("slow").with_velocity(1.0));
        let s = slow.clone();
        let err = re
            .run(Plan::new("timeout", move |ctx| async move {
                bps::abs_set(&ctx, &s, 10.0, Some("G"), false).await?;
                bps::wait(&ctx, Some("G"), Some(0.05)).await
            }))
            .await
            .unwrap_err();
        let RunError::Failed { error, .. } = err else {
            panic!()
        };
        assert_eq!(error.to_string(), "wait for group G timed out after 0.05 s");
    });
}

#[test]
fn a_status_timeout_fails_the_status() {
    run(async {
        let re = RunEngine::new();
        let slow = DeviceHandle::spawn(SynAxis::new("slow").with_velocity(1.0).with_timeout(0.05));
        let s = slow.clone();
        let err = re
            .run(Plan::new("status timeout", move |ctx| async move {
                bps::mv(&ctx, &[(&s, 10.0)]).await
            }))
            .await
            .unwrap_err();
        let RunError::Failed { error, .. } = err else {
            panic!()
        };
        assert_eq!(
            error.to_string(),
            "set on slow failed: status timed out after 0.05 s"
        );
    });
}

#[test]
fn settle_time_delays_completion() {
    run(async {
        let re = RunEngine::new();
        let m = DeviceHandle::spawn(SynAxis::new("m").with_settle_time(0.05));
        let m2 = m.clone();
        re.run(Plan::new("settle", move |ctx| async move {
            let st = bps::abs_set(&ctx, &m2, 1.0, Some("g"), false).await?;
            assert!(
                !st.done(),
                "still settling right after an instantaneous move"
            );
            bps::wait_group(&ctx, Some("g")).await?;
            assert!(st.success());
            Ok(())
        }))
        .await
        .unwrap();
    });
}
