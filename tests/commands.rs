//! The command table's boundary: malformed messages fail the run with an
//! error naming the command and the argument, registered commands answer
//! like built-in ones, a reply of the wrong kind is an error, and `locate`
//! goes through the engine (request timeout, pause).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{failed, motor_det, run, until, Docs};
use serde_json::Value;
use skyrun::{
    plan_stubs as bps, preprocessors::run_wrapper, EngineState, ExitStatus, Msg, Plan, PlanError,
    Reply, RunEngine, RunError,
};
use skyrun_actors::{
    sim::SynAxis, Device, DeviceContext, DeviceError, DeviceHandle, DeviceOp, DeviceReply, Later,
    Movable, Status,
};

/// Runs `msg` inside an open run and returns the failure text; checks the
/// stop document carries it and the engine runs the next plan.
async fn fails_with(re: &RunEngine, msg: Msg) -> String {
    let docs = Docs::subscribe(re);
    let plan = run_wrapper(
        Plan::new("one message", move |ctx| async move {
            ctx.send(msg).await?;
            Ok(())
        }),
        Default::default(),
    );
    let (text, summary) = failed(re.run(plan).await.unwrap_err());
    assert_eq!(summary.exit_status, ExitStatus::Fail);
    let stop = docs.stops().pop().expect("a stop document");
    assert_eq!(
        (stop.exit_status, stop.reason.as_str()),
        (ExitStatus::Fail, text.as_str())
    );
    re.run(Plan::new(
        "after",
        |ctx| async move { bps::null(&ctx).await },
    ))
    .await
    .expect("the engine is usable after a malformed message");
    text
}

#[test]
fn malformed_messages_name_the_command_and_the_argument() {
    run(async {
        let re = RunEngine::new();
        let (motor, _det) = motor_det();
        // Wrong argument type.
        assert_eq!(
            fails_with(&re, Msg::new("wait").kwarg("timeout", "soon")).await,
            "ill-formed 'wait' message: timeout must be a non-negative number of seconds, got \"soon\""
        );
        assert_eq!(
            fails_with(&re, Msg::new("pause").kwarg("defer", 1)).await,
            "ill-formed 'pause' message: argument 'defer' must be true or false, got 1"
        );
        assert_eq!(
            fails_with(&re, Msg::new("set").obj(&motor).arg(1.0).kwarg("group", 7)).await,
            "ill-formed 'set' message: argument 'group' must be a string, got 7"
        );
        // Missing argument.
        assert_eq!(
            fails_with(&re, Msg::new("set").obj(&motor)).await,
            "ill-formed 'set' message: it needs the value to set as its one argument"
        );
        assert_eq!(
            fails_with(&re, Msg::new("read")).await,
            "ill-formed 'read' message: it needs a target device (obj)"
        );
        assert_eq!(
            fails_with(&re, Msg::new("locate")).await,
            "ill-formed 'locate' message: it needs at least one device to locate"
        );
        // Unknown command.
        assert_eq!(
            fails_with(&re, Msg::new("frobnicate")).await,
            "unknown message command 'frobnicate'"
        );
        // Unknown keyword.
        assert_eq!(
            fails_with(&re, Msg::new("set").obj(&motor).arg(1.0).kwarg("speed", 3)).await,
            "ill-formed 'set' message: unknown keyword argument 'speed' (it takes group)"
        );
        assert_eq!(
            fails_with(&re, Msg::new("save").kwarg("name", "primary")).await,
            "ill-formed 'save' message: unknown keyword argument 'name' (it takes no keyword arguments)"
        );
    });
}

#[test]
fn bluesky_forms_are_accepted_group_as_keyword_and_devices_among_the_arguments() {
    run(async {
        let re = RunEngine::new();
        let a = DeviceHandle::spawn(SynAxis::new("a"));
        let b = DeviceHandle::spawn(SynAxis::new("b"));
        let (a2, b2) = (a.clone(), b.clone());
        re.run(Plan::new("bluesky form", move |ctx| async move {
            // Msg('set', a, 2, group='g'); Msg('wait', None, group='g')
            ctx.send(Msg::new("set").obj(&a2).arg(2.0).kwarg("group", "g"))
                .await?;
            ctx.send(Msg::new("set").obj(&b2).arg(-1.0).kwarg("group", "g"))
                .await?;
            ctx.send(Msg::new("wait").kwarg("group", "g")).await?;
            // Msg('locate', a, b, squeeze=False)
            let Reply::Locations(at) = ctx
                .send(
                    Msg::new("locate")
                        .obj(&a2)
                        .device_arg(&b2)
                        .kwarg("squeeze", false),
                )
                .await?
            else {
                panic!("locate answers locations");
            };
            let readbacks: Vec<Value> = at.into_iter().map(|l| l.readback).collect();
            assert_eq!(readbacks, [Value::from(2.0), Value::from(-1.0)]);
            Ok(())
        }))
        .await
        .unwrap();
    });
}

#[test]
fn a_registered_command_answers_with_device_access_and_is_listed() {
    run(async {
        let re = RunEngine::new();
        assert!(!re.commands().contains(&"double".to_string()));
        assert!(re.commands().contains(&"locate".to_string()));
        // `double`: reads the target's position through the engine's device access.
        re.register_command("double", |msg: Msg, cx| async move {
            let dev = msg.obj.clone().expect("a target");
            let DeviceReply::Position(p) = cx.request("double", &dev, DeviceOp::Position).await?
            else {
                return Err(PlanError::failed("no position"));
            };
            Ok(Reply::Value((p.as_f64().unwrap_or(0.0) * 2.0).into()))
        });
        assert!(re.commands().contains(&"double".to_string()));
        let motor = DeviceHandle::spawn(SynAxis::new("motor"));
        let seen = Arc::new(Mutex::new(None));
        let (m, s) = (motor.clone(), seen.clone());
        re.run(Plan::new("uses double", move |ctx| async move {
            bps::mv(&ctx, &[(&m, 1.5)]).await?;
            let Reply::Value(v) = ctx.send(Msg::new("double").obj(&m)).await? else {
                panic!("a value");
            };
            *s.lock().unwrap() = Some(v);
            Ok(())
        }))
        .await
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), Some(Value::from(3.0)));
        // Unregistered, the command is unknown again and fails the run naming it.
        assert!(re.unregister_command("double"));
        assert!(!re.unregister_command("double"));
        assert_eq!(
            fails_with(&re, Msg::new("double").obj(&motor)).await,
            "unknown message command 'double'"
        );
    });
}

#[test]
fn a_reply_of_the_wrong_kind_is_an_error_naming_the_command() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        // Replaces the table's `read` with one that answers nothing.
        re.register_command("read", |_msg, _cx| async { Ok(Reply::None) });
        let (_motor, det) = motor_det();
        let plan = run_wrapper(
            Plan::new("reads", move |ctx| async move {
                bps::read(&ctx, &det).await?;
                Ok(())
            }),
            Default::default(),
        );
        let err = re.run(plan).await.unwrap_err();
        let RunError::Failed { error, .. } = &err else {
            panic!("a failed run, got {err:?}");
        };
        assert_eq!(
            *error,
            PlanError::WrongReply {
                command: "read".into(),
                expected: "readings",
                got: "nothing",
            }
        );
        assert_eq!(
            docs.stops()[0].reason,
            "read: expected readings as its reply, got nothing"
        );
        // The table's `read` is back once the replacement is removed.
        assert!(re.unregister_command("read"));
        let (_motor, det) = motor_det();
        re.run(Plan::new("reads", move |ctx| async move {
            bps::read(&ctx, &det).await.map(|_| ())
        }))
        .await
        .unwrap();
    });
}

/// A motor whose position takes `delay` to answer (it blocks its own thread).
struct SlowToLocate {
    axis: SynAxis,
    delay: Duration,
    /// How many times `position` was entered.
    entered: Arc<AtomicUsize>,
}

impl Device for SlowToLocate {
    fn name(&self) -> &str {
        self.axis.name()
    }
    fn type_name(&self) -> &'static str {
        "SlowToLocate"
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
}

impl Movable for SlowToLocate {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.axis.movable().unwrap().set(value, ctx)
    }
    fn position(&self) -> Value {
        self.entered.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.axis.position()
    }
}

#[test]
fn locate_has_the_request_timeout_and_its_errors_name_locate() {
    run(async {
        let re = RunEngine::builder()
            .request_timeout(Some(Duration::from_millis(50)))
            .build();
        let arbiter = actix::Arbiter::new();
        let slow = DeviceHandle::builder(SlowToLocate {
            axis: SynAxis::new("slow"),
            delay: Duration::from_millis(400),
            entered: Arc::default(),
        })
        .arbiter(arbiter.handle())
        .spawn();
        let s = slow.clone();
        let plan = run_wrapper(
            Plan::new("relative", move |ctx| async move {
                bps::mvr(&ctx, &[(&s, 1.0)]).await
            }),
            Default::default(),
        );
        let (msg, _) = failed(re.run(plan).await.unwrap_err());
        assert_eq!(
            msg,
            "locate on slow: device 'slow' did not answer locate within 0.05 s"
        );
        arbiter.stop();
    });
}

#[test]
fn a_pause_interrupts_a_pending_locate_and_resume_replays_it() {
    run(async {
        let re = RunEngine::builder().request_timeout(None).build();
        let arbiter = actix::Arbiter::new();
        let entered = Arc::new(AtomicUsize::new(0));
        let slow = DeviceHandle::builder(SlowToLocate {
            axis: SynAxis::new("slow"),
            delay: Duration::from_millis(1000),
            entered: entered.clone(),
        })
        .arbiter(arbiter.handle())
        .spawn();
        let s = slow.clone();
        let located = Arc::new(Mutex::new(Vec::new()));
        let l = located.clone();
        let plan = Plan::new("locate", move |ctx| async move {
            bps::checkpoint(&ctx).await?;
            let p = bps::position(&ctx, &s).await?;
            l.lock().unwrap().push(p);
            Ok(())
        });
        let re2 = re.clone();
        let runner = actix::spawn(async move { re2.run(plan).await });
        // Pause while the locate is pending (the device takes 1 s to answer).
        common::eventually("locate to reach the device", || {
            entered.load(Ordering::SeqCst) > 0
        })
        .await;
        re.pause(false).await.expect("pause while running");
        until(&re, EngineState::Paused).await;
        assert!(
            located.lock().unwrap().is_empty(),
            "the locate was interrupted"
        );
        re.resume().await.expect("resume");
        let summary = tokio::time::timeout(Duration::from_secs(10), runner)
            .await
            .expect("the plan ends within 10 s")
            .expect("the plan task")
            .expect("the plan succeeds");
        assert_eq!(summary.exit_status, ExitStatus::Success);
        assert_eq!(*located.lock().unwrap(), [0.0]);
        arbiter.stop();
    });
}

#[test]
fn a_run_engine_outside_an_actix_system_is_a_clear_error() {
    let Err(e) = RunEngine::try_new() else {
        panic!("no actix system here, yet an engine was created");
    };
    assert_eq!(
        e.to_string(),
        "a RunEngine must be created inside an actix::System: wrap the code in \
         `actix::System::new().block_on(async { ... })` (or use `#[actix::main]`)"
    );
    let panic =
        std::panic::catch_unwind(RunEngine::new).expect_err("new() panics outside a system");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("inside an actix::System"), "{text}");
}

/// A motor whose location comes later: each locate records whether it was
/// `gathered` with others in `asked`, waits at `barrier` (for every device of
/// one `locate` to be asked) and answers `at`, or fails with `fail`.
struct LocatedLater {
    name: String,
    at: f64,
    barrier: Arc<tokio::sync::Barrier>,
    fail: Option<&'static str>,
    asked: Arc<Mutex<Vec<bool>>>,
}

impl Device for LocatedLater {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        "LocatedLater"
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
}

impl Movable for LocatedLater {
    fn set(&mut self, _: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        let s = ctx.status().build();
        s.set_finished();
        Ok(s)
    }
    fn position(&self) -> Value {
        self.at.into()
    }
    fn locate_later(&self, gathered: bool) -> Option<Later<(Value, Value)>> {
        self.asked.lock().unwrap().push(gathered);
        let (barrier, at, fail, name) =
            (self.barrier.clone(), self.at, self.fail, self.name.clone());
        Some(Box::pin(async move {
            barrier.wait().await;
            match fail {
                Some(reason) => Err(DeviceError::Failed {
                    device: name,
                    operation: "locate",
                    reason: reason.into(),
                }),
                None => Ok((Value::from(at + 0.5), Value::from(at))),
            }
        }))
    }
}

/// Bluesky's `_locate` gathers the `locate()`s of several objects: each
/// device is asked before any answers (the devices here answer only once
/// all were asked; one after the other, the first would wait past the
/// request timeout), and the locations come in the devices' order. A device
/// located alone is told so (it may answer at once).
#[test]
fn locate_of_several_devices_asks_them_all_at_once() {
    run(async {
        let re = RunEngine::builder()
            .request_timeout(Some(Duration::from_secs(5)))
            .build();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let devices = |all: &[(&str, f64, Option<&'static str>)]| {
            let barrier = Arc::new(tokio::sync::Barrier::new(all.len()));
            all.iter()
                .map(|(name, at, fail)| {
                    DeviceHandle::spawn(LocatedLater {
                        name: (*name).into(),
                        at: *at,
                        barrier: barrier.clone(),
                        fail: *fail,
                        asked: asked.clone(),
                    })
                })
                .collect::<Vec<_>>()
        };
        let located = Arc::new(Mutex::new(Vec::new()));
        let locate = |devices: Vec<DeviceHandle>| {
            let l = located.clone();
            Plan::new("locate", move |ctx| async move {
                let mut msg = Msg::locate(&devices[0]);
                for d in &devices[1..] {
                    msg = msg.device_arg(d);
                }
                let cmd = msg.command.clone();
                let locations = ctx.send(msg).await?.locations(&cmd)?;
                *l.lock().unwrap() = locations
                    .into_iter()
                    .map(|x| (x.setpoint, x.readback))
                    .collect();
                Ok(())
            })
        };
        let v = |x: f64| Value::from(x);

        let three = devices(&[("c", 3.0, None), ("a", 1.0, None), ("b", 2.0, None)]);
        re.run(locate(three))
            .await
            .expect("the three locates answer together");
        assert_eq!(
            *located.lock().unwrap(),
            [(v(3.5), v(3.0)), (v(1.5), v(1.0)), (v(2.5), v(2.0))]
        );
        assert_eq!(*asked.lock().unwrap(), [true, true, true]);

        asked.lock().unwrap().clear();
        re.run(locate(devices(&[("alone", 4.0, None)])))
            .await
            .expect("a lone locate");
        assert_eq!(*located.lock().unwrap(), [(v(4.5), v(4.0))]);
        assert_eq!(*asked.lock().unwrap(), [false]);

        // A device whose locate fails fails the message, naming it.
        let pair = devices(&[("ok", 0.0, None), ("bad", 0.0, Some("encoder lost"))]);
        let text = fails_with(&re, Msg::locate(&pair[0]).device_arg(&pair[1])).await;
        assert_eq!(
            text,
            "locate on bad: device 'bad' failed during locate: encoder lost"
        );
    });
}

/// A simulated motor mid-move answers `locate` as an ophyd motor's
/// `locate()`: the setpoint it was sent to, and where it is now.
#[test]
fn a_moving_sim_axis_locates_its_setpoint_and_its_readback() {
    run(async {
        let re = RunEngine::new();
        let slow = DeviceHandle::spawn(SynAxis::new("slow").with_velocity(1.0));
        let (s, seen) = (slow.clone(), Arc::new(Mutex::new(Vec::new())));
        let out = seen.clone();
        // The move is stopped afterwards, which fails its status (and the plan).
        let _ = re
            .run(Plan::new("locate mid-move", move |ctx| async move {
                // Msg('set', slow, 10, group='move'), no wait: 10 s at 1 unit/s.
                ctx.send(Msg::new("set").obj(&s).arg(10.0).kwarg("group", "move"))
                    .await?;
                if let Reply::Locations(at) = ctx.send(Msg::new("locate").obj(&s)).await? {
                    *out.lock().unwrap() = at;
                }
                ctx.send(Msg::new("stop").obj(&s)).await?;
                Ok(())
            }))
            .await;
        let at = seen.lock().unwrap().clone();
        assert_eq!(at.len(), 1, "locate answers one location");
        assert_eq!(at[0].setpoint, Value::from(10.0));
        let readback = at[0].readback.as_f64().unwrap();
        assert!((0.0..10.0).contains(&readback), "mid-move: {readback}");
    });
}
