//! Every message command, and what happens with unknown or ill-formed ones.

mod common;

use common::{failed, motor_det, run, Docs};
use serde_json::json;
use skyrun::{plan_stubs as bps, ExitStatus, Msg, Plan, PlanError, Reply, RunEngine};
use skyrun_actors::{
    sim::{SynAxis, SynFlyer, SynSignal},
    DeviceHandle,
};

#[test]
fn every_command_is_handled() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (motor, det) = motor_det();
        let flyer = DeviceHandle::spawn(SynFlyer::new("flyer", 4));
        let (m, d, f) = (motor.clone(), det.clone(), flyer.clone());
        let plan = Plan::new("all", move |ctx| async move {
            let send = |msg: Msg| {
                let ctx = ctx.clone();
                async move { ctx.send(msg).await }
            };
            send(Msg::new("null")).await?;
            send(Msg::new("stage").obj(&d)).await?;
            let Reply::RunUid(uid) = send(Msg::new("open_run").kwarg("purpose", "all")).await?
            else {
                panic!()
            };
            assert_eq!(uid.len(), 36);
            send(Msg::new("declare_stream").obj(&d).kwarg("name", "primary")).await?;
            send(Msg::new("checkpoint")).await?;
            let Reply::Status(s) = send(Msg::new("set").obj(&m).arg(0.5).group("g")).await? else {
                panic!()
            };
            send(Msg::new("wait").group("g")).await?;
            assert!(s.success());
            let Reply::Status(t) = send(Msg::new("trigger").obj(&d)).await? else {
                panic!()
            };
            send(Msg::new("wait")).await?;
            assert!(t.done());
            send(Msg::new("create").kwarg("name", "primary")).await?;
            let Reply::Readings(r) = send(Msg::new("read").obj(&d)).await? else {
                panic!()
            };
            assert!(r.contains_key("det"));
            send(Msg::new("save")).await?;
            send(Msg::new("create").kwarg("name", "primary")).await?;
            send(Msg::new("read").obj(&d)).await?;
            send(Msg::new("drop")).await?;
            send(Msg::new("sleep").arg(0.001)).await?;
            send(Msg::new("clear_checkpoint")).await?;
            let Reply::Configured { old, new } =
                send(Msg::new("configure").obj(&m).kwarg("velocity", 3.0)).await?
            else {
                panic!()
            };
            assert_eq!(old["motor_velocity"].value, json!(0.0));
            assert_eq!(new["motor_velocity"].value, json!(3.0));
            send(Msg::new("kickoff").obj(&f).group("fly")).await?;
            send(Msg::new("wait").group("fly")).await?;
            send(Msg::new("complete").obj(&f).kwarg("wait", true)).await?;
            let Reply::Collected(n) = send(Msg::new("collect").obj(&f)).await? else {
                panic!()
            };
            assert_eq!(n, 4);
            send(Msg::new("pause").kwarg("defer", true)).await?;
            send(Msg::new("unstage").obj(&d)).await?;
            send(Msg::new("close_run")).await?;
            Ok(())
        });
        // The plan requests a deferred pause; resume it once paused.
        let re2 = re.clone();
        let run = actix::spawn(async move { re2.run(plan).await });
        // the deferred pause never hits a checkpoint after it, so the plan finishes.
        let summary = common::bounded("the plan to end", run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_eq!(
            docs.names(),
            [
                "start",
                "descriptor",
                "event",
                "descriptor",
                "event_page",
                "stop"
            ]
        );
        let stop = &docs.stops()[0];
        assert_eq!(stop.num_events["primary"], 1);
        assert_eq!(stop.num_events["flyer"], 4);
        let ev = docs.events();
        assert_eq!(ev[1].data["flyer_x"], json!(-1.0));
        assert_eq!(ev[4].data["flyer_x"], json!(1.0));
        assert_eq!(ev[4].seq_num, 4);
    });
}

#[test]
fn unknown_command_fails_the_run_with_its_name() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let plan = skyrun::preprocessors::run_wrapper(
            Plan::new("bad", |ctx| async move {
                ctx.send(Msg::new("frobnicate")).await.map(|_| ())
            }),
            Default::default(),
        );
        let (msg, summary) = failed(re.run(plan).await.unwrap_err());
        assert_eq!(msg, "unknown message command 'frobnicate'");
        assert_eq!(summary.exit_status, ExitStatus::Fail);
        let stop = &docs.stops()[0];
        assert_eq!(stop.exit_status, ExitStatus::Fail);
        assert_eq!(stop.reason, "unknown message command 'frobnicate'");
    });
}

#[test]
fn ill_formed_messages_name_what_is_wrong() {
    run(async {
        let re = RunEngine::new();
        let (motor, _det) = motor_det();
        let cases: Vec<(Msg, &str)> = vec![
            (Msg::new("set").arg(1.0), "ill-formed 'set' message: it needs a target device (obj)"),
            (Msg::new("set").obj(&motor), "ill-formed 'set' message: it needs the value to set as its one argument"),
            (Msg::new("sleep").arg("soon"), "ill-formed 'sleep' message: it needs a non-negative number of seconds as its argument"),
            (Msg::new("wait").kwarg("timeout", -1), "ill-formed 'wait' message: timeout must be a non-negative number of seconds, got -1"),
            (Msg::new("close_run"), "close_run: no run is open (send 'open_run' first)"),
            (Msg::new("save"), "save: no run is open (send 'open_run' first)"),
            (Msg::new("set").obj(&motor).arg(f64::NAN), "set on motor: device 'motor' rejected set: expected a finite number, got null"),
            (Msg::new("kickoff").obj(&motor), "kickoff: A 'kickoff' message was sent but no run is open."),
        ];
        for (msg, expected) in cases {
            let m = msg.clone();
            let err = re
                .run(Plan::new("one", move |ctx| async move {
                    ctx.send(m).await.map(|_| ())
                }))
                .await
                .unwrap_err();
            assert_eq!(failed(err).0, expected, "for {msg:?}");
        }
        // The engine is still usable.
        re.run(Plan::new("ok", |ctx| async move { bps::null(&ctx).await }))
            .await
            .unwrap();
    });
}

#[test]
fn illegal_sequences_are_refused() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let err = re
            .run(Plan::new("nested", |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::open_run(&ctx, Default::default()).await?;
                Ok(())
            }))
            .await
            .unwrap_err();
        assert_eq!(
            failed(err).0,
            "open_run: a run is already open; close it first, or give each nested run its own run key"
        );
        // The run left open is closed by the engine, with the failure.
        let stops = docs.stops();
        assert_eq!(stops.len(), 1);
        assert_eq!(stops[0].exit_status, ExitStatus::Fail);

        let err = re
            .run(Plan::new("double create", |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::create(&ctx, "primary").await?;
                bps::create(&ctx, "primary").await?;
                Ok(())
            }))
            .await
            .unwrap_err();
        assert!(failed(err)
            .0
            .starts_with("create: an event bundle for stream 'primary' is already open"));
    });
}

/// Two devices that share a name are two objects, as in Bluesky's bundler:
/// read into one event their keys collide (`ValueError`); read into one
/// stream's events one after the other, the second is not the stream's
/// object (`RuntimeError`, "Mismatched objects read").
#[test]
fn two_devices_of_one_name_are_not_one_object() {
    run(async {
        let re = RunEngine::new();
        let a = DeviceHandle::spawn(SynSignal::new("det", 1.0));
        let b = DeviceHandle::spawn(SynSignal::new("det", 2.0));
        let event = |devs: Vec<DeviceHandle>| {
            Plan::new("one event", move |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::trigger_and_read(&ctx, &devs, "primary").await?;
                Ok(())
            })
        };
        let err = re.run(event(vec![a.clone(), b.clone()])).await.unwrap_err();
        let skyrun::RunError::Failed { error, .. } = err else {
            panic!("not a failure")
        };
        assert_eq!(error.kind(), "ValueError", "{error}");
        assert!(
            error.to_string().contains("two objects named 'det'"),
            "{error}"
        );

        let (a2, b2) = (a.clone(), b.clone());
        let err = re
            .run(Plan::new("two events", move |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::trigger_and_read(&ctx, &[a2], "primary").await?;
                bps::trigger_and_read(&ctx, &[b2], "primary").await?;
                Ok(())
            }))
            .await
            .unwrap_err();
        let skyrun::RunError::Failed { error, summary } = err else {
            panic!("not a failure")
        };
        assert!(
            matches!(
                &error,
                PlanError::Bundle {
                    raises: skyrun::BlueskyException::RuntimeError,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("Mismatched objects read"),
            "{error}"
        );
        assert_eq!(summary.exit_status, ExitStatus::Fail);
        // The same object twice is fine.
        re.run(event(vec![a.clone()]))
            .await
            .expect("one object reads");
    });
}

#[test]
fn nested_runs_with_run_keys_are_separate() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let sig = DeviceHandle::spawn(SynSignal::new("sig", 7));
        let s = sig.clone();
        re.run(Plan::new("two runs", move |ctx| async move {
            ctx.send(Msg::new("open_run").run("a")).await?;
            ctx.send(Msg::new("open_run").run("b")).await?;
            for key in ["a", "b", "b"] {
                ctx.send(Msg::new("create").run(key).kwarg("name", "primary"))
                    .await?;
                ctx.send(Msg::new("read").obj(&s).run(key)).await?;
                ctx.send(Msg::new("save").run(key)).await?;
            }
            ctx.send(Msg::new("close_run").run("b")).await?;
            ctx.send(Msg::new("close_run").run("a")).await?;
            Ok(())
        }))
        .await
        .unwrap();
        let stops = docs.stops();
        let starts = docs.starts();
        assert_eq!(starts.len(), 2);
        assert_eq!(stops[0].run_start, starts[1].uid);
        assert_eq!(stops[0].num_events["primary"], 2);
        assert_eq!(stops[1].num_events["primary"], 1);
        assert_eq!(docs.events()[0].data["sig"], json!(7));
    });
}

#[test]
fn a_failing_status_fails_the_run_and_the_engine_stays_usable() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = DeviceHandle::spawn(SynAxis::new("motor").with_limits(-10.0, 10.0));
        let m = motor.clone();
        let plan = skyrun::preprocessors::run_wrapper(
            Plan::new("too far", move |ctx| async move {
                bps::mv(&ctx, &[(&m, 12.0)]).await
            }),
            Default::default(),
        );
        let (msg, summary) = failed(re.run(plan).await.unwrap_err());
        assert_eq!(
            msg,
            "set on motor failed: motor: position 12 is outside the limits [-10, 10]"
        );
        assert_eq!(summary.reason, msg);
        let stop = &docs.stops()[0];
        assert_eq!(stop.exit_status, ExitStatus::Fail);
        assert_eq!(stop.reason, msg);
        // Next plan runs normally.
        let m = motor.clone();
        re.run(Plan::new("fine", move |ctx| async move {
            bps::mv(&ctx, &[(&m, 3.0)]).await
        }))
        .await
        .unwrap();
        assert_eq!(re.state(), skyrun::EngineState::Idle);
    });
}

#[test]
fn a_plan_error_is_the_stop_reason() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let plan = skyrun::preprocessors::run_wrapper(
            Plan::new("boom", |ctx| async move {
                bps::null(&ctx).await?;
                Err(PlanError::failed("boom in plan"))
            }),
            Default::default(),
        );
        let (msg, _) = failed(re.run(plan).await.unwrap_err());
        assert_eq!(msg, "boom in plan");
        assert_eq!(docs.names(), ["start", "stop"]);
        assert_eq!(docs.stops()[0].reason, "boom in plan");
    });
}

#[test]
fn a_plan_that_fails_without_run_wrapper_still_gets_a_stop_document() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let err = re
            .run(Plan::new("leaky", |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                Err(PlanError::failed("no wrapper"))
            }))
            .await
            .unwrap_err();
        assert_eq!(failed(err).0, "no wrapper");
        assert_eq!(docs.names(), ["start", "stop"]);
        assert_eq!(docs.stops()[0].exit_status, ExitStatus::Fail);
        assert_eq!(docs.stops()[0].reason, "no wrapper");
    });
}

#[test]
fn a_second_plan_while_one_runs_is_refused() {
    run(async {
        let re = RunEngine::new();
        let re2 = re.clone();
        let long = actix::spawn(async move {
            re2.run(Plan::new("long", |ctx| async move {
                bps::sleep(&ctx, 0.2).await
            }))
            .await
        });
        common::eventually("the plan to start", || {
            re.state() != skyrun::EngineState::Idle
        })
        .await;
        let err = re
            .run(Plan::new(
                "second",
                |ctx| async move { bps::null(&ctx).await },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the RunEngine is busy: a plan is already running"
        );
        common::bounded("the plan to end", long)
            .await
            .unwrap()
            .unwrap();
    });
}

/// As Bluesky's bundler: a device's configuration cannot change inside an
/// event bundle (between `create` and `save`).
#[test]
fn configure_inside_an_event_bundle_is_refused() {
    common::run(async {
        let re = skyrun::RunEngine::new();
        let motor = skyrun_actors::DeviceHandle::spawn(skyrun_actors::sim::SynAxis::new("motor"));
        let m = motor.clone();
        let err = re
            .run(Plan::new("configure_in_bundle", move |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::declare_stream(&ctx, "primary", &[&m]).await?;
                bps::create(&ctx, "primary").await?;
                bps::configure(&ctx, &m, Default::default()).await?;
                Ok(())
            }))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan failed: configure: cannot configure after 'create' and before 'save'"
        );
    });
}
