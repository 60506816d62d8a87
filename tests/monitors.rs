//! `monitor` / `unmonitor` (Bluesky's `RunBundler.monitor`): a descriptor for
//! the monitor's stream, an event for the current reading and one per
//! update, in the run; unmonitored at `close_run` if the plan forgot;
//! monitoring outside a run, twice, or unmonitoring what is not monitored
//! are illegal message sequences.

mod common;

use common::{failed, run, Docs};
use opentelemetry::Context;
use serde_json::json;
use skyrun::{plan_stubs as bps, ExitStatus, Plan, RunEngine};
use skyrun_actors::sim::{SynAxis, SynGauss, SynSignal};
use skyrun_actors::{DeviceHandle, DeviceOp};

/// Gives the engine's monitor task a turn to record what was published.
async fn settle(ctx: &skyrun::PlanCtx) -> Result<(), skyrun::PlanError> {
    bps::sleep(ctx, 0.02).await
}

#[test]
fn a_monitor_emits_its_descriptor_the_current_reading_and_each_update_until_unmonitored() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let sig = DeviceHandle::spawn(SynSignal::new("current", 400.0).with_units("mA"));
        let s = sig.clone();
        re.run(Plan::new("watch", move |ctx| async move {
            bps::open_run(&ctx, Default::default()).await?;
            bps::monitor(&ctx, &s, None).await?;
            bps::mv(&ctx, &[(&s, 390.0)]).await?;
            settle(&ctx).await?;
            bps::mv(&ctx, &[(&s, 380.0)]).await?;
            settle(&ctx).await?;
            bps::unmonitor(&ctx, &s).await?;
            // Not monitored any more: no event.
            bps::mv(&ctx, &[(&s, 370.0)]).await?;
            settle(&ctx).await?;
            bps::close_run(&ctx, None, None).await.map(|_| ())
        }))
        .await
        .unwrap();
        assert_eq!(
            docs.names(),
            ["start", "descriptor", "event", "event", "event", "stop"]
        );
        let start = &docs.starts()[0];
        let d = &docs.descriptors()[0];
        assert_eq!(d.name, "current_monitor");
        assert_eq!(d.run_start, start.uid);
        assert_eq!(d.data_keys["current"].units.as_deref(), Some("mA"));
        assert_eq!(
            d.data_keys["current"].object_name.as_deref(),
            Some("current")
        );
        assert_eq!(d.object_keys["current"], ["current"]);
        let events = docs.events();
        let values: Vec<_> = events.iter().map(|e| e.data["current"].clone()).collect();
        assert_eq!(values, [json!(400.0), json!(390.0), json!(380.0)]);
        assert!(events.iter().all(|e| e.descriptor == d.uid));
        let seq: Vec<u64> = events.iter().map(|e| e.seq_num).collect();
        assert_eq!(seq, [1, 2, 3]);
        assert!(events.iter().all(|e| e.timestamps["current"] > 0.0));
        let stop = &docs.stops()[0];
        assert_eq!(stop.num_events["current_monitor"], 3);
    });
}

#[test]
fn a_monitored_detector_records_every_trigger_beside_the_primary_stream() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = SynAxis::new("motor");
        let det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
        let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));
        let (m, d) = (motor.clone(), det.clone());
        re.run(Plan::new("scan_monitored", move |ctx| async move {
            bps::open_run(&ctx, Default::default()).await?;
            bps::monitor(&ctx, &d, Some("det_watch")).await?;
            for x in [-1.0, 0.0, 1.0] {
                bps::checkpoint(&ctx).await?;
                bps::mv(&ctx, &[(&m, x)]).await?;
                bps::trigger_and_read(&ctx, &[&m, &d], "primary").await?;
                settle(&ctx).await?;
            }
            // The plan forgets to unmonitor: close_run does it.
            bps::close_run(&ctx, None, None).await.map(|_| ())
        }))
        .await
        .unwrap();
        let descriptors = docs.descriptors();
        let names: Vec<&str> = descriptors.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["det_watch", "primary"]);
        let (watch, primary) = (&descriptors[0].uid, &descriptors[1].uid);
        let events = docs.events();
        let of = |uid: &str| -> Vec<(u64, serde_json::Value)> {
            events
                .iter()
                .filter(|e| e.descriptor == uid)
                .map(|e| (e.seq_num, e.data["det"].clone()))
                .collect()
        };
        let primary = of(primary);
        let watched = of(watch);
        assert_eq!(primary.len(), 3);
        // The value before any trigger, then each trigger's.
        assert_eq!(watched.len(), 4, "{watched:?}");
        assert_eq!(
            watched.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let triggered: Vec<_> = watched[1..].iter().map(|(_, v)| v.clone()).collect();
        let read: Vec<_> = primary.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(triggered, read);
        let stop = &docs.stops()[0];
        assert_eq!(stop.num_events["det_watch"], 4);
        assert_eq!(stop.num_events["primary"], 3);
        // The monitor ended with the run: an update now records nothing.
        det.request(DeviceOp::Trigger, &Context::new())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(docs.events().len(), 7);
    });
}

/// Runs `plan` and returns its failure message and the documents' names.
async fn failure(plan: impl FnOnce(DeviceHandle) -> Plan) -> (String, Vec<String>) {
    let re = RunEngine::new();
    let docs = Docs::subscribe(&re);
    let sig = DeviceHandle::spawn(SynSignal::new("current", 400.0));
    let err = re.run(plan(sig)).await.unwrap_err();
    let (reason, summary) = failed(err);
    assert_eq!(summary.exit_status, ExitStatus::Fail);
    (reason, docs.names())
}

#[test]
fn monitoring_outside_a_run_twice_or_unmonitoring_what_is_not_monitored_is_illegal() {
    run(async {
        let (reason, names) = failure(|s| {
            Plan::new("outside", move |ctx| async move {
                bps::monitor(&ctx, &s, None).await
            })
        })
        .await;
        assert!(
            reason.contains("monitor") && reason.contains("no run is open"),
            "{reason}"
        );
        assert!(names.is_empty());

        let (reason, names) = failure(|s| {
            Plan::new("twice", move |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::monitor(&ctx, &s, None).await?;
                bps::monitor(&ctx, &s, Some("again")).await
            })
        })
        .await;
        assert!(reason.contains("current is already monitored"), "{reason}");
        // The stop document still comes, after the first monitor's documents.
        assert_eq!(names, ["start", "descriptor", "event", "stop"]);

        let (reason, _) = failure(|s| {
            Plan::new("unmonitored", move |ctx| async move {
                bps::open_run(&ctx, Default::default()).await?;
                bps::unmonitor(&ctx, &s).await
            })
        })
        .await;
        assert!(
            reason.contains("cannot unmonitor current: it is not monitored"),
            "{reason}"
        );
    });
}
