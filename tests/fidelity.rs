//! Behaviour compared with real Bluesky 1.15.1 + ophyd 1.11.2 on the same
//! plans: the keyword arguments and group names of the waits stubs issue,
//! `fly`'s waits, a failed status nobody waits on, `configure`'s new
//! descriptor, exception events with the semantic-convention keys, and
//! `stop` (`RunEngine._stop`).

mod common;

use std::time::Duration;

use common::{run, Docs, Traced};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use serde_json::{json, Map};
use skyrun::{
    plan_stubs as bps, plans, preprocessors::run_wrapper, Document, ExitStatus, Plan, RunEngine,
    RunError,
};
use skyrun_actors::{
    sim::{Faults, SynAxis, SynFlyer, SynGauss, SynSignal},
    DeviceHandle,
};

fn attr(s: &SpanData, key: &str) -> Option<Value> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn kwargs(s: &SpanData) -> serde_json::Value {
    let Some(Value::String(k)) = attr(s, "msg.kwargs") else {
        panic!("{} has no msg.kwargs", s.name);
    };
    serde_json::from_str(k.as_str()).unwrap()
}

fn waits(spans: &[SpanData]) -> Vec<&SpanData> {
    spans
        .iter()
        .filter(|s| s.name == "Bluesky RunEngine wait")
        .collect()
}

/// 1 unit/s: a move to 100 whose 20 ms status timeout fires long before it arrives.
fn crawler() -> SynAxis {
    SynAxis::new("crawler")
        .with_velocity(1.0)
        .with_timeout(0.02)
}

/// A motor whose set statuses never complete.
fn stuck() -> DeviceHandle {
    DeviceHandle::spawn(
        SynAxis::new("stuck").with_faults(Faults::none().never_completes(1.0).unwrap()),
    )
}

/// What a failed run failed with.
fn failure(err: RunError) -> String {
    match err {
        RunError::Failed { error, .. } => error.to_string(),
        other => panic!("the run fails, got {other:?}"),
    }
}

#[test]
fn trigger_and_read_waits_as_bps_wait_with_a_short_uid_group() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let motor = SynAxis::new("motor");
        let det = t.device(SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0));
        re.run(plans::count(vec![det], 2, 0.0)).await.unwrap();
    });
    let spans = t.spans();
    let w = waits(&spans);
    assert_eq!(w.len(), 2);
    let mut groups = Vec::new();
    for wait in w {
        let k = kwargs(wait);
        let group = k["group"].as_str().unwrap().to_owned();
        assert_eq!(
            k,
            json!({"group": group, "error_on_timeout": true, "timeout": null, "watch": []})
        );
        // Bluesky's short_uid("trigger"): "trigger-" and six hex digits of a uuid4.
        let suffix = group.strip_prefix("trigger-").expect("a trigger- group");
        assert_eq!(suffix.len(), 6);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{group}");
        groups.push(group);
    }
    assert_ne!(groups[0], groups[1]);
}

#[test]
fn mv_waits_with_a_uuid_group_and_timeout_none_and_scans_as_move_per_step() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let m = t.device(SynAxis::new("m"));
        let m2 = m.clone();
        re.run(Plan::new("mv", move |ctx| async move {
            bps::mv(&ctx, &[(&m2, 1.0)]).await
        }))
        .await
        .unwrap();
        let det = t.device(SynGauss::new(
            "det",
            SynAxis::new("x").probe(),
            0.0,
            1.0,
            1.0,
        ));
        re.run(plans::scan(vec![det], &m, 0.0, 1.0, 2))
            .await
            .unwrap();
    });
    let spans = t.spans();
    let w = waits(&spans);
    // mv: one wait; the scan: per point a "set-" wait and a "trigger-" wait.
    assert_eq!(w.len(), 5);
    let k = kwargs(w[0]);
    let group = k["group"].as_str().unwrap().to_owned();
    assert_eq!(k, json!({"group": group, "timeout": null}));
    assert!(
        uuid::Uuid::parse_str(&group).is_ok(),
        "mv's group is a uuid4: {group}"
    );
    for point in [1, 3] {
        let k = kwargs(w[point]);
        let g = k["group"].as_str().unwrap().to_owned();
        assert!(g.starts_with("set-") && g.len() == 10, "{g}");
        assert_eq!(k, json!({"group": g}));
    }
}

#[test]
fn fly_waits_for_each_kickoff_and_each_complete_on_no_group() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let a = t.device(SynFlyer::new("a", 2));
        let b = t.device(SynFlyer::new("b", 2));
        re.run(plans::fly(vec![a, b])).await.unwrap();
    });
    let spans = t.spans();
    let w = waits(&spans);
    assert_eq!(
        w.len(),
        4,
        "kickoff(wait=True) and complete(wait=True) per flyer"
    );
    for wait in w {
        assert_eq!(attr(wait, "no_group_given"), Some(Value::Bool(true)));
        assert_eq!(
            kwargs(wait),
            json!({"group": null, "error_on_timeout": true, "timeout": null, "watch": []})
        );
    }
}

#[test]
fn a_failed_status_nobody_waits_on_fails_the_run_at_the_next_message() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        // 1 unit/s to 100: its 20 ms timeout fires long before it arrives.
        let m = DeviceHandle::spawn(crawler());
        let plan = run_wrapper(
            Plan::new("fire and forget", move |ctx| async move {
                bps::abs_set(&ctx, &m, 100.0, None, false).await?;
                bps::sleep(&ctx, 0.2).await?;
                bps::null(&ctx).await
            }),
            Map::new(),
        );
        let err = re.run(plan).await.unwrap_err();
        let RunError::Failed { error, summary } = err else {
            panic!("the run fails, got {err:?}");
        };
        assert_eq!(
            error.to_string(),
            "set on crawler failed: status timed out after 0.02 s"
        );
        assert_eq!(summary.exit_status, ExitStatus::Fail);
        let stop = docs.stops().pop().unwrap();
        assert_eq!(stop.exit_status, ExitStatus::Fail);
        assert_eq!(stop.reason, error.to_string());
        // The next run is not blamed for it.
        re.run(Plan::new(
            "next",
            |ctx| async move { bps::null(&ctx).await },
        ))
        .await
        .expect("the engine is usable");
    });
}

#[test]
fn a_failed_status_that_a_wait_reports_is_not_thrown_again() {
    run(async {
        let re = RunEngine::new();
        let m = DeviceHandle::spawn(crawler());
        let caught = std::sync::Arc::new(std::sync::Mutex::new(None));
        let c = caught.clone();
        re.run(Plan::new("catches", move |ctx| async move {
            let r = bps::abs_set(&ctx, &m, 100.0, Some("g"), true).await;
            *c.lock().unwrap() = r.err().map(|e| e.to_string());
            // The plan handled it: the next messages go through.
            bps::null(&ctx).await?;
            bps::sleep(&ctx, 0.01).await
        }))
        .await
        .expect("a plan that catches the failure succeeds");
        assert_eq!(
            caught.lock().unwrap().as_deref(),
            Some("set on crawler failed: status timed out after 0.02 s")
        );
    });
}

#[test]
fn configure_emits_the_new_descriptor_at_once() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        // SynAxis is configurable (velocity, acceleration, ...).
        let d = DeviceHandle::spawn(SynAxis::new("motor"));
        // open_run, create, read, save, configure, close_run
        let plan = run_wrapper(
            Plan::new("configure", move |ctx| async move {
                bps::create(&ctx, "primary").await?;
                bps::read(&ctx, &d).await?;
                bps::save(&ctx).await?;
                bps::configure(&ctx, &d, Map::new()).await?;
                Ok(())
            }),
            Map::new(),
        );
        re.run(plan).await.unwrap();
        assert_eq!(
            docs.names(),
            ["start", "descriptor", "event", "descriptor", "stop"]
        );
        let descs = docs.descriptors();
        assert_ne!(descs[0].uid, descs[1].uid);
        assert_eq!(descs[1].name, "primary");
        let Some(Document::Descriptor(_)) = docs.all().get(3).cloned() else {
            panic!("the fourth document is the new descriptor");
        };
    });
}

#[test]
fn exception_events_carry_type_message_and_escaped() {
    let t = Traced::new();
    run(async {
        let re = t.engine().build();
        let m = t.device(crawler());
        let plan = Plan::new("fails", move |ctx| async move {
            bps::abs_set(&ctx, &m, 100.0, Some("g"), true)
                .await
                .map(|_| ())
        });
        re.run(plan).await.unwrap_err();
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
    let spans = t.spans();
    let event = |name: &str| {
        let span = spans.iter().find(|s| s.name == name).unwrap();
        let ev = span
            .events
            .iter()
            .find(|e| e.name == "exception")
            .unwrap_or_else(|| panic!("{name} has an exception event"));
        let get = |k: &str| {
            ev.attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        (
            get("exception.type"),
            get("exception.message"),
            get("exception.escaped"),
        )
    };
    assert_eq!(
        event("Bluesky RunEngine wait"),
        (
            Some(Value::from("FailedStatus")),
            Some(Value::from(
                "set on crawler failed: status timed out after 0.02 s".to_owned()
            )),
            Some(Value::Bool(true))
        )
    );
    assert_eq!(
        event("Ophyd Status"),
        (
            Some(Value::from("StatusTimeoutError")),
            Some(Value::from("status timed out after 0.02 s".to_owned())),
            Some(Value::Bool(false))
        )
    );
}

#[test]
fn a_status_that_fails_after_its_plan_ended_does_not_fail_the_next_plan() {
    run(async {
        let re = RunEngine::new();
        let m = DeviceHandle::spawn(
            SynAxis::new("crawler")
                .with_velocity(1.0)
                .with_timeout(0.05),
        );
        let m2 = m.clone();
        // Starts a move that times out 50 ms later, and ends at once (successfully).
        re.run(Plan::new("fire and leave", move |ctx| async move {
            bps::abs_set(&ctx, &m2, 100.0, None, false)
                .await
                .map(|_| ())
        }))
        .await
        .expect("the plan ended before its status failed");
        tokio::time::sleep(Duration::from_millis(150)).await;
        re.run(Plan::new("next", |ctx| async move {
            bps::null(&ctx).await?;
            bps::null(&ctx).await
        }))
        .await
        .expect("the next plan is not blamed for the earlier plan's status");
    });
}

#[test]
fn scan_start_documents_carry_bluesky_plan_patterns() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let m1 = DeviceHandle::spawn(SynAxis::new("motor1"));
        let m2 = DeviceHandle::spawn(SynAxis::new("motor2").with_position(0.5));
        let det = DeviceHandle::spawn(SynGauss::new(
            "det",
            SynAxis::new("x").probe(),
            0.0,
            1.0,
            1.0,
        ));
        let r1 = m1.repr();
        let r2 = m2.repr();
        re.run(plans::scan(vec![det.clone()], &m1, -1.0, 1.0, 3))
            .await
            .unwrap();
        re.run(plans::list_scan(vec![det.clone()], &m1, vec![1.0, 2.0]))
            .await
            .unwrap();
        re.run(plans::grid_scan(
            vec![det.clone()],
            vec![(m1.clone(), -1.0, 1.0, 2), (m2.clone(), 0.0, 1.0, 2)],
            true,
        ))
        .await
        .unwrap();
        re.run(plans::rel_scan(vec![det.clone()], &m2, -1.0, 1.0, 3))
            .await
            .unwrap();
        let starts = docs.starts();
        let md = |i: usize, k: &str| starts[i].metadata[k].clone();
        // As Bluesky 1.15.1 writes them for the same plans.
        assert_eq!(md(0, "plan_pattern"), "inner_product");
        assert_eq!(md(0, "plan_pattern_module"), "bluesky.plan_patterns");
        assert_eq!(
            md(0, "plan_pattern_args"),
            json!({"num": 3, "args": [r1, -1.0, 1.0]})
        );
        assert_eq!(md(1, "plan_pattern"), "inner_list_product");
        assert_eq!(
            md(1, "plan_pattern_args"),
            json!({"args": [r1, [1.0, 2.0]]})
        );
        assert_eq!(md(1, "plan_args")["args"], json!([r1, [1.0, 2.0]]));
        assert_eq!(md(2, "plan_pattern"), "outer_product");
        assert_eq!(
            md(2, "plan_pattern_args"),
            json!({"args": [r1, -1.0, 1.0, 2, r2, 0.0, 1.0, 2, true]})
        );
        assert_eq!(md(2, "extents"), json!([[-1.0, 1.0], [0.0, 1.0]]));
        assert_eq!(md(2, "snaking"), json!([false, true]));
        // rel_scan records the relative start and stop, as Bluesky's does.
        assert_eq!(md(3, "plan_name"), "rel_scan");
        assert_eq!(
            md(3, "plan_pattern_args"),
            json!({"num": 3, "args": [r2, -1.0, 1.0]})
        );
        assert_eq!(md(3, "plan_type"), "generator");
    });
}

#[test]
fn stop_ends_a_move_where_it_is_and_fails_its_status_as_bps_stop_does() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let axis = SynAxis::new("crawler").with_velocity(10.0);
        let det = DeviceHandle::spawn(SynGauss::new("det", axis.probe(), 0.0, 1.0, 1.0));
        let m = DeviceHandle::spawn(axis);
        let seen = std::sync::Arc::new(std::sync::Mutex::new((None, f64::NAN)));
        let s = seen.clone();
        let sig = DeviceHandle::spawn(SynSignal::new("sig", 0.0));
        let (m2, det2, sig2) = (m.clone(), det.clone(), sig.clone());
        re.run(Plan::new("stopped", move |ctx| async move {
            bps::abs_set(&ctx, &m2, 100.0, Some("g"), false).await?;
            bps::sleep(&ctx, 0.05).await?;
            // The stopped move's status failed: thrown into the plan at once,
            // in place of stop's reply (nobody waits on it yet).
            let r = bps::stop(&ctx, &m2).await;
            s.lock().unwrap().0 = r.err().map(|e| e.to_string());
            s.lock().unwrap().1 = bps::position(&ctx, &m2).await?;
            // An ophyd Device's stop() exists on detectors too: nothing happens.
            bps::stop(&ctx, &det2).await
        }))
        .await
        .expect("a plan that catches the failure succeeds");
        let (error, at) = seen.lock().unwrap().clone();
        assert_eq!(
            error.as_deref(),
            Some("set on crawler failed: crawler was stopped before the operation completed")
        );
        assert!(at > 0.0 && at < 100.0, "stopped on the way, at {at}");

        // A device that cannot be stopped (an ophyd Signal has no stop())
        // fails the run, with its stop document.
        let err = re
            .run(run_wrapper(
                Plan::new("stop a signal", move |ctx| async move {
                    bps::stop(&ctx, &sig2).await
                }),
                Map::new(),
            ))
            .await
            .unwrap_err();
        let error = failure(err);
        assert_eq!(error, "stop: sig cannot be stopped (it is not Stoppable)");
        let stop = docs.stops().pop().unwrap();
        assert_eq!(stop.exit_status, ExitStatus::Fail);
        assert_eq!(stop.reason, error);
        drop((m, det, sig));
    });
}

#[test]
fn a_wait_that_times_out_without_failing_says_not_done_and_keeps_the_group() {
    run(async {
        let re = RunEngine::new();
        let stuck = stuck();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let err = re
            .run(Plan::new("polls", move |ctx| async move {
                bps::abs_set(&ctx, &stuck, 1.0, Some("g"), false).await?;
                // Bluesky's `wait(error_on_timeout=False)` returns `done`; the
                // statuses go back in the group, so the second wait waits on
                // the same status (an emptied group would say done at once).
                for _ in 0..2 {
                    let done = bps::wait_done(&ctx, Some("g"), 0.02, &[]).await?;
                    s.lock().unwrap().push(done);
                }
                // An empty group is done.
                let done = bps::wait_done(&ctx, Some("nothing"), 0.02, &[]).await?;
                s.lock().unwrap().push(done);
                // With error_on_timeout, the same wait fails the plan.
                bps::wait(&ctx, Some("g"), Some(0.02)).await
            }))
            .await
            .unwrap_err();
        assert_eq!(failure(err), "wait for group g timed out after 0.02 s");
        assert_eq!(*seen.lock().unwrap(), [false, false, true]);
    });
}

#[test]
fn a_wait_that_watches_a_group_fails_when_a_status_of_that_group_fails() {
    run(async {
        let re = RunEngine::new();
        let stuck = stuck();
        // 1 unit/s to 100: its 20 ms timeout fires long before it arrives.
        let crawler = DeviceHandle::spawn(crawler());
        let err = re
            .run(Plan::new("watches", move |ctx| async move {
                bps::abs_set(&ctx, &crawler, 100.0, Some("watched"), false).await?;
                bps::abs_set(&ctx, &stuck, 1.0, Some("main"), false).await?;
                // Without the watch this would wait forever on `stuck`.
                bps::wait_done(&ctx, Some("main"), 60.0, &["watched"])
                    .await
                    .map(drop)
            }))
            .await
            .unwrap_err();
        assert_eq!(
            failure(err),
            "set on crawler failed: status timed out after 0.02 s"
        );
    });
}
