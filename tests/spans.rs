//! Span structure as behaviour: names, parents and attributes of the spans the
//! engine and the device actors record, checked with the SDK's in-memory exporter.

mod common;

use common::{run, Traced};
use opentelemetry::trace::{SpanId, Status as SpanStatus};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::SpanData;
use skyrun::{plan_stubs as bps, plans, preprocessors::run_wrapper, telemetry::trace_plan, Plan};
use skyrun_actors::{
    sim::{SynAxis, SynFlyer, SynGauss},
    DeviceHandle, SpanTracer,
};

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let v = named(spans, name);
    assert_eq!(v.len(), 1, "expected one '{name}' span, got {}", v.len());
    v[0]
}

fn attr(s: &SpanData, key: &str) -> Option<Value> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn s(v: &str) -> Option<Value> {
    Some(Value::from(v.to_owned()))
}

fn child_of(child: &SpanData, parent: &SpanData) -> bool {
    child.parent_span_id == parent.span_context.span_id()
        && child.span_context.trace_id() == parent.span_context.trace_id()
}

fn is_root(span: &SpanData) -> bool {
    span.parent_span_id == SpanId::INVALID
}

#[test]
fn set_nests_status_under_set_under_the_plan_span_across_actors() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor1"));
        let m = motor.clone();
        let plan = run_wrapper(
            trace_plan(
                "demo plan",
                Plan::new("demo", move |ctx| async move {
                    bps::abs_set(&ctx, &m, 5, None, false).await?;
                    bps::wait_group(&ctx, None).await
                }),
            ),
            Default::default(),
        );
        re.run(plan).await.unwrap();
    });
    let spans = t.spans();
    let status = one(&spans, "Ophyd Status");
    let set = one(&spans, "Bluesky RunEngine set");
    let wait = one(&spans, "Bluesky RunEngine wait");
    let demo = one(&spans, "demo plan");
    let run_span = one(&spans, "Bluesky RunEngine run");
    assert!(child_of(status, set), "Status under set");
    assert!(child_of(set, demo), "set under the plan span");
    assert!(child_of(wait, demo));
    assert!(is_root(demo));
    assert!(
        is_root(run_span),
        "Bluesky's default: the run span is its own trace"
    );
    assert_ne!(
        run_span.span_context.trace_id(),
        demo.span_context.trace_id()
    );
    assert_eq!(status.instrumentation_scope.name(), "ophyd.status");
    assert_eq!(set.instrumentation_scope.name(), "bluesky.tracing");

    assert_eq!(attr(set, "msg.command"), s("set"));
    assert_eq!(
        attr(set, "msg.args"),
        Some(Value::Array(Array::I64(vec![5])))
    );
    assert_eq!(attr(set, "msg.kwargs"), s(r#"{"group": null}"#));
    assert_eq!(
        attr(set, "msg.obj"),
        s("SynAxis(prefix='', name='motor1', read_attrs=['readback', 'setpoint'], configuration_attrs=['velocity', 'acceleration'])")
    );
    assert_eq!(attr(wait, "no_group_given"), Some(Value::Bool(true)));
    assert_eq!(attr(wait, "msg.no_obj_given"), Some(Value::Bool(true)));

    assert_eq!(attr(status, "status_type"), s("MoveStatus"));
    assert_eq!(attr(status, "settle_time"), Some(Value::F64(0.0)));
    assert_eq!(attr(status, "no_timeout_given"), Some(Value::Bool(true)));
    assert_eq!(attr(status, "device_name"), s("motor1"));
    assert_eq!(attr(status, "device_type"), s("SynAxis"));
    assert_eq!(attr(status, "kwargs"), s("{}"));
    assert_eq!(attr(status, "target"), Some(Value::F64(5.0)));
    assert_eq!(
        attr(status, "start_pos"),
        Some(Value::F64(0.0)),
        "no trailing space (Bluesky bug fixed)"
    );
    assert_eq!(attr(status, "start_pos "), None);
    assert_eq!(attr(status, "unit"), s("mm"));
    assert_eq!(attr(status, "positioner_name"), s("motor1"));
    assert_eq!(attr(status, "finish_pos"), Some(Value::F64(5.0)));
    assert!(matches!(attr(status, "start_time"), Some(Value::F64(t)) if t > 1.7e9));
    assert!(matches!(attr(status, "finish_time"), Some(Value::F64(t)) if t > 1.7e9));
    // The span covers the move exactly: it starts at start_time and (no settling)
    // ends at finish_time.
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    assert_eq!(
        attr(status, "start_time"),
        Some(Value::F64(secs(status.start_time)))
    );
    assert_eq!(
        attr(status, "finish_time"),
        Some(Value::F64(secs(status.end_time)))
    );
    assert_eq!(
        attr(status, "object_repr"),
        s("MoveStatus(done=True, pos=motor1, elapsed=0.0, success=True, settle_time=0.0)"),
        "object_repr taken at completion (Bluesky always says done=False)"
    );
    assert_eq!(status.status, SpanStatus::Unset);
    // ophyd's order, which the console exporter prints as is.
    let keys: Vec<&str> = status.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "status_type",
            "settle_time",
            "no_timeout_given",
            "device_name",
            "device_type",
            "kwargs",
            "target",
            "start_time",
            "start_pos",
            "unit",
            "positioner_name",
            "positioner",
            "finish_time",
            "finish_pos",
            "object_repr",
        ]
    );

    assert_eq!(attr(run_span, "msg.command"), s("open_run"));
    assert_eq!(
        attr(run_span, "msg.args"),
        Some(Value::Array(Array::I64(vec![])))
    );
    assert_eq!(attr(run_span, "msg.no_obj_given"), Some(Value::Bool(true)));
    assert_eq!(
        attr(run_span, "exit_status"),
        s("success"),
        "Bluesky says \"None\" here"
    );
    assert_eq!(attr(run_span, "reason"), s(""));
}

#[test]
fn wait_with_a_group_records_it() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor"));
        let m = motor.clone();
        re.run(Plan::new("grouped", move |ctx| async move {
            bps::abs_set(&ctx, &m, 1.0, Some("A"), false).await?;
            bps::wait(&ctx, Some("A"), None).await
        }))
        .await
        .unwrap();
    });
    let spans = t.spans();
    let wait = one(&spans, "Bluesky RunEngine wait");
    let set = one(&spans, "Bluesky RunEngine set");
    assert_eq!(attr(wait, "group"), s("A"));
    assert_eq!(attr(wait, "no_group_given"), None);
    assert_eq!(
        attr(wait, "msg.kwargs"),
        s(r#"{"group": "A", "error_on_timeout": true, "timeout": null, "watch": []}"#)
    );
    assert_eq!(attr(set, "msg.kwargs"), s(r#"{"group": "A"}"#));
    assert!(
        is_root(wait) && is_root(set),
        "no plan span, no run: roots, as in Bluesky"
    );
    assert!(child_of(one(&spans, "Ophyd Status"), set));
}

#[test]
fn run_trace_makes_one_run_one_trace() {
    let t = Traced::new();
    run(async {
        let re = t.engine().run_trace(true).build();
        let motor = SynAxis::new("motor");
        let det = t.device(SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0));
        let motor = t.device(motor);
        re.run(plans::scan(vec![det], &motor, 0.0, 1.0, 3))
            .await
            .unwrap();
    });
    let spans = t.spans();
    let run_span = one(&spans, "Bluesky RunEngine run");
    assert!(is_root(run_span));
    let trace = run_span.span_context.trace_id();
    assert!(
        spans.iter().all(|s| s.span_context.trace_id() == trace),
        "one trace"
    );
    for set in named(&spans, "Bluesky RunEngine set") {
        assert!(child_of(set, run_span));
    }
    for w in named(&spans, "Bluesky RunEngine wait") {
        assert!(child_of(w, run_span));
    }
    // 3 move statuses under their sets; 6 trigger statuses (untraced
    // message: the detector's and, as in Bluesky, the motor's) under the run.
    let statuses = named(&spans, "Ophyd Status");
    assert_eq!(statuses.len(), 9);
    let device_statuses: Vec<_> = statuses
        .iter()
        .filter(|s| attr(s, "status_type") == Some(Value::from("DeviceStatus")))
        .collect();
    assert_eq!(device_statuses.len(), 6);
    assert!(device_statuses.iter().all(|s| child_of(s, run_span)));
}

#[test]
fn complete_and_collect_are_traced_with_the_flyer_status_under_complete() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let flyer = t.device(SynFlyer::new("flyer", 3));
        re.run(plans::fly(vec![flyer])).await.unwrap();
    });
    let spans = t.spans();
    let complete = one(&spans, "Bluesky RunEngine complete");
    let collect = one(&spans, "Bluesky RunEngine collect");
    assert_eq!(attr(complete, "msg.kwargs"), s(r#"{"group": null}"#));
    assert_eq!(attr(complete, "msg.obj"), s("SynFlyer(name='flyer')"));
    assert_eq!(
        attr(collect, "msg.kwargs"),
        s(r#"{"stream": false, "return_payload": true, "name": null}"#)
    );
    let under_complete: Vec<_> = named(&spans, "Ophyd Status")
        .into_iter()
        .filter(|st| child_of(st, complete))
        .collect();
    assert_eq!(under_complete.len(), 1);
    assert_eq!(attr(under_complete[0], "status_type"), s("DeviceStatus"));
    assert_eq!(
        named(&spans, "Bluesky RunEngine kickoff").len(),
        0,
        "kickoff is not traced by default"
    );
}

#[test]
fn a_failed_status_ends_its_span_with_an_error() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor").with_limits(-1.0, 1.0));
        let m = motor.clone();
        let err = re
            .run(run_wrapper(
                Plan::new("bad move", move |ctx| async move {
                    bps::mv(&ctx, &[(&m, 2.0)]).await
                }),
                Default::default(),
            ))
            .await;
        assert!(err.is_err());
    });
    let spans = t.spans();
    let status = one(&spans, "Ophyd Status");
    assert_eq!(
        status.status,
        SpanStatus::error("StatusFailed: motor: position 2 is outside the limits [-1, 1]")
    );
    assert_eq!(
        attr(status, "exception"),
        s("motor: position 2 is outside the limits [-1, 1]")
    );
    assert!(status.events.iter().any(|e| e.name == "exception"));
    let run_span = one(&spans, "Bluesky RunEngine run");
    assert_eq!(attr(run_span, "exit_status"), s("fail"));
    assert_eq!(
        attr(run_span, "reason"),
        s("set on motor failed: motor: position 2 is outside the limits [-1, 1]")
    );
    // The status failed at once: as in Bluesky, the failure is thrown into
    // the plan in place of the set's reply, so the plan never reaches its wait.
    assert!(named(&spans, "Bluesky RunEngine wait").is_empty());
}

#[test]
fn a_status_that_times_out_still_ends_its_span() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor").with_velocity(1.0).with_timeout(0.02));
        let m = motor.clone();
        assert!(re
            .run(Plan::new("slow", move |ctx| async move {
                bps::mv(&ctx, &[(&m, 5.0)]).await
            }))
            .await
            .is_err());
    });
    let spans = t.spans();
    let status = one(&spans, "Ophyd Status");
    assert_eq!(attr(status, "timeout"), Some(Value::F64(0.02)));
    assert_eq!(
        status.status,
        SpanStatus::error("StatusTimeoutError: status timed out after 0.02 s")
    );
}

#[test]
fn an_aborted_run_span_keeps_exit_status_and_reason() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor").with_velocity(1.0));
        let m = motor.clone();
        let re2 = re.clone();
        let h = actix::spawn(async move {
            re2.run(run_wrapper(
                Plan::new("long", move |ctx| async move {
                    bps::mv(&ctx, &[(&m, 50.0)]).await
                }),
                Default::default(),
            ))
            .await
        });
        common::eventually("the plan to start", || {
            re.state() == skyrun::EngineState::Running
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        re.abort("beam dump").await.unwrap();
        assert!(common::bounded("the plan to end", h)
            .await
            .unwrap()
            .is_err());
    });
    let spans = t.spans();
    let run_span = one(&spans, "Bluesky RunEngine run");
    assert_eq!(attr(run_span, "exit_status"), s("abort"));
    assert_eq!(
        attr(run_span, "reason"),
        s("beam dump"),
        "Bluesky drops the abort reason"
    );
    // The motor was stopped: its move status completed and its span ended.
    assert_eq!(named(&spans, "Ophyd Status").len(), 1);
}

#[test]
fn a_paused_and_resumed_plan_keeps_its_nesting() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor").with_velocity(20.0));
        let m = motor.clone();
        let re2 = re.clone();
        let h = actix::spawn(async move {
            re2.run(trace_plan(
                "demo plan",
                Plan::new("p", move |ctx| async move {
                    bps::checkpoint(&ctx).await?;
                    bps::abs_set(&ctx, &m, 4.0, Some("g"), false).await?; // 200 ms
                    bps::wait_group(&ctx, Some("g")).await?;
                    bps::abs_set(&ctx, &m, 4.5, Some("h"), true).await?;
                    Ok(())
                }),
            ))
            .await
        });
        common::eventually("the plan to start", || {
            re.state() == skyrun::EngineState::Running
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        re.pause(false).await.unwrap();
        while re.state() != skyrun::EngineState::Paused {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        re.resume().await.unwrap();
        h.await.unwrap().unwrap();
    });
    let spans = t.spans();
    let demo = one(&spans, "demo plan");
    let sets = named(&spans, "Bluesky RunEngine set");
    assert_eq!(sets.len(), 3, "the interrupted set was replayed on resume");
    assert!(sets.iter().all(|s| child_of(s, demo)));
    let waits = named(&spans, "Bluesky RunEngine wait");
    assert!(waits.iter().all(|w| child_of(w, demo)));
    for st in named(&spans, "Ophyd Status") {
        assert!(sets.iter().any(|s| child_of(st, s)));
    }
}

#[test]
fn trace_all_messages_records_untraced_commands_too() {
    let t = Traced::new();
    run(async {
        let re = t.engine().trace_all_messages(true).build();
        let motor = SynAxis::new("motor");
        let det = t.device(SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0));
        re.run(plans::count(vec![det], 1, 0.0)).await.unwrap();
    });
    let spans = t.spans();
    for name in [
        "trigger",
        "read",
        "create",
        "save",
        "checkpoint",
        "stage",
        "unstage",
        "open_run",
        "close_run",
    ] {
        assert!(
            !named(&spans, &format!("Bluesky RunEngine {name}")).is_empty(),
            "no span for {name}"
        );
    }
    let trigger = one(&spans, "Bluesky RunEngine trigger");
    let status = one(&spans, "Ophyd Status");
    assert!(child_of(status, trigger));
}

#[test]
fn an_outside_context_is_the_parent_of_the_plan_spans() {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState};
    let t = Traced::new();
    let outside = SpanContext::new(
        TraceId::from(0x1234u128),
        SpanId::from(0x42u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    run(async {
        let re = t.engine().build();
        let plan = trace_plan(
            "demo plan",
            Plan::new("p", |ctx| async move { bps::null(&ctx).await }),
        );
        re.run_with_parent(
            plan,
            opentelemetry::Context::new().with_remote_span_context(outside),
        )
        .await
        .unwrap();
    });
    let spans = t.spans();
    let demo = one(&spans, "demo plan");
    assert_eq!(demo.parent_span_id, SpanId::from(0x42u64));
    assert_eq!(demo.span_context.trace_id(), TraceId::from(0x1234u128));
}

#[test]
fn the_status_span_links_up_when_the_device_runs_on_another_thread() {
    let t = Traced::new();
    let engine_thread = std::thread::current().id();
    run(async {
        let re = t.engine().build();
        let arbiter = actix::Arbiter::new();
        let motor = DeviceHandle::builder(SynAxis::new("remote"))
            .tracer(SpanTracer::from_provider(&t.provider, "ophyd.status"))
            .arbiter(arbiter.handle())
            .spawn();
        // Prove the actor runs elsewhere.
        let (tx, rx) = tokio::sync::oneshot::channel();
        arbiter.spawn(async move {
            let _ = tx.send(std::thread::current().id());
        });
        assert_ne!(rx.await.unwrap(), engine_thread);
        let m = motor.clone();
        re.run(trace_plan(
            "demo plan",
            Plan::new(
                "p",
                move |ctx| async move { bps::mv(&ctx, &[(&m, 1.0)]).await },
            ),
        ))
        .await
        .unwrap();
        arbiter.stop();
    });
    let spans = t.spans();
    let set = one(&spans, "Bluesky RunEngine set");
    assert!(child_of(one(&spans, "Ophyd Status"), set));
    assert!(child_of(set, one(&spans, "demo plan")));
}

#[test]
fn a_device_error_ends_the_set_span_and_the_run_span_with_an_error() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("motor"));
        let m = motor.clone();
        let r = re
            .run(run_wrapper(
                Plan::new("nan", move |ctx| async move {
                    bps::abs_set(&ctx, &m, f64::NAN, None, false)
                        .await
                        .map(|_| ())
                }),
                Default::default(),
            ))
            .await;
        assert!(r.is_err());
    });
    let spans = t.spans();
    let set = one(&spans, "Bluesky RunEngine set");
    let reason = "set on motor: device 'motor' rejected set: expected a finite number, got null";
    assert_eq!(
        set.status,
        SpanStatus::error(format!("DeviceError: {reason}"))
    );
    assert!(set.events.iter().any(|e| e.name == "exception"));
    let run_span = one(&spans, "Bluesky RunEngine run");
    assert_eq!(run_span.status, SpanStatus::error(reason));
    assert_eq!(attr(run_span, "reason"), s(reason));
}

#[test]
fn a_settling_status_span_ends_after_the_settle_time_not_at_finish_time() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = t.device(SynAxis::new("m").with_settle_time(0.05));
        let plan = Plan::new("settle", move |ctx| async move {
            bps::abs_set(&ctx, &motor, 1, None, true).await.map(|_| ())
        });
        re.run(plan).await.unwrap();
    });
    let spans = t.spans();
    let status = one(&spans, "Ophyd Status");
    let Some(Value::F64(finish)) = attr(status, "finish_time") else {
        panic!("finish_time recorded")
    };
    let end = status
        .end_time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(end >= finish + 0.05, "ended {end}, finished {finish}");
    assert_eq!(attr(status, "settle_time"), Some(Value::F64(0.05)));
}
