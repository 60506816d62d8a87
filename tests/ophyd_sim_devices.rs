//! The simulated devices behave as ophyd.sim's where Bluesky can see it:
//! every SynAxis and SynSignal is triggerable (a finished DeviceStatus, so
//! `trigger_and_read` triggers motors too) and SynGauss is configurable with
//! ophyd.sim's configuration attributes.
//!
//! Compared on Bluesky 1.15.1 + ophyd 1.11.2: `RE(bp.scan([det], motor, -1,
//! 1, 5))` with ophyd.sim's `SynAxis` and `SynGauss` and an in-memory span
//! exporter records 5 MoveStatus (motor), 5 DeviceStatus (det) and 5
//! DeviceStatus (motor) "Ophyd Status" spans (also in
//! shared/reference/bluesky-traces/2_scan.json); `SynGauss.configure`
//! accepts Imax, center, sigma, noise, noise_multiplier and refuses other
//! names.

mod common;

use std::collections::BTreeMap;

use common::{run, Docs};
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};
use skyrun::{plan_stubs as bps, plans, preprocessors::run_wrapper, Plan, RunEngine, RunError};
use skyrun_actors::sim::{SynAxis, SynGauss, SynSignal};
use skyrun_actors::{DeviceHandle, SpanTracer};

fn attr(s: &SpanData, key: &str) -> String {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| match &kv.value {
            OtelValue::String(v) => v.to_string(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

#[test]
fn a_five_point_scan_has_ten_device_statuses_as_in_bluesky() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    run(async {
        let tracer = SpanTracer::from_provider(&provider, "ophyd.status");
        let motor = SynAxis::new("motor");
        let det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
        let motor = DeviceHandle::builder(motor).tracer(tracer.clone()).spawn();
        let det = DeviceHandle::builder(det).tracer(tracer).spawn();
        assert!(motor.capabilities().triggerable);
        let re = RunEngine::builder()
            .tracer(SpanTracer::from_provider(&provider, "bluesky.tracing"))
            .build();
        re.run(plans::scan(vec![det], &motor, -1.0, 1.0, 5))
            .await
            .unwrap();
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let mut by_kind: BTreeMap<(String, String), usize> = BTreeMap::new();
    for s in spans.iter().filter(|s| s.name == "Ophyd Status") {
        *by_kind
            .entry((attr(s, "status_type"), attr(s, "device_name")))
            .or_default() += 1;
    }
    let key = |t: &str, d: &str| (t.to_owned(), d.to_owned());
    assert_eq!(
        by_kind,
        BTreeMap::from([
            (key("DeviceStatus", "det"), 5),
            (key("DeviceStatus", "motor"), 5),
            (key("MoveStatus", "motor"), 5),
        ])
    );
    let motor_trigger = spans
        .iter()
        .find(|s| attr(s, "status_type") == "DeviceStatus" && attr(s, "device_name") == "motor")
        .unwrap();
    assert_eq!(
        attr(motor_trigger, "object_repr"),
        "DeviceStatus(device=motor, done=True, success=True)"
    );
    assert_eq!(attr(motor_trigger, "device_type"), "SynAxis");
}

#[test]
fn trigger_and_read_triggers_motors_and_signals_too() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = DeviceHandle::spawn(SynAxis::new("motor").with_position(1.5));
        let sig = DeviceHandle::spawn(SynSignal::new("temperature", 21.5));
        let plan = {
            let (m, s) = (motor.clone(), sig.clone());
            run_wrapper(
                Plan::new("tr", move |ctx| async move {
                    let st = bps::trigger(&ctx, &m, None, true).await?;
                    assert!(
                        st.done() && st.success(),
                        "a motor's trigger is finished at once"
                    );
                    bps::trigger_and_read(&ctx, &[m, s], "primary").await?;
                    Ok(())
                }),
                Default::default(),
            )
        };
        re.run(plan).await.unwrap();
        let ev = &docs.events()[0];
        assert_eq!(ev.data["motor"], json!(1.5));
        assert_eq!(ev.data["temperature"], json!(21.5));
    });
}

#[test]
fn syn_gauss_is_configurable_with_ophyd_sims_attributes() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let motor = SynAxis::new("motor");
        let det = DeviceHandle::spawn(SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0));
        let motor = DeviceHandle::spawn(motor);
        let d = det.clone();
        let configured = std::sync::Arc::new(std::sync::Mutex::new(None));
        let c = configured.clone();
        re.run(run_wrapper(
            Plan::new("cfg", move |ctx| async move {
                let settings = json!({"Imax": 5.0, "noise": "uniform", "noise_multiplier": 0.0});
                let (old, new) =
                    bps::configure(&ctx, &d, settings.as_object().unwrap().clone()).await?;
                *c.lock().unwrap() = Some((old, new));
                bps::trigger_and_read(&ctx, std::slice::from_ref(&d), "primary").await?;
                Ok(())
            }),
            Default::default(),
        ))
        .await
        .unwrap();
        let (old, new) = configured.lock().unwrap().take().unwrap();
        let values = |r: &skyrun_actors::Readings| {
            r.iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect::<Vec<(String, Value)>>()
        };
        let kv = |k: &str, v: Value| (k.to_owned(), v);
        assert_eq!(
            values(&old),
            [
                kv("det_Imax", json!(1.0)),
                kv("det_center", json!(0.0)),
                kv("det_sigma", json!(1.0)),
                kv("det_noise", json!("none")),
                kv("det_noise_multiplier", json!(1.0)),
            ]
        );
        assert_eq!(
            values(&new),
            [
                kv("det_Imax", json!(5.0)),
                kv("det_center", json!(0.0)),
                kv("det_sigma", json!(1.0)),
                kv("det_noise", json!("uniform")),
                kv("det_noise_multiplier", json!(0.0)),
            ]
        );
        // The new Imax is what the detector reads at the peak (noise x 0).
        assert_eq!(docs.events()[0].data["det"], json!(5.0));
        // The descriptor carries all five configuration attributes.
        let desc = &docs.descriptors()[0];
        let conf = serde_json::to_value(&desc.configuration["det"]).unwrap();
        assert_eq!(conf["data"]["det_noise"], json!("uniform"));
        assert_eq!(conf["data_keys"]["det_noise"]["dtype"], json!("string"));

        // Unknown attributes are refused, naming them, and change nothing.
        let d = det.clone();
        let err = re
            .run(Plan::new("bad", move |ctx| async move {
                let settings = json!({"Imax": 7.0, "bogus": 1});
                bps::configure(&ctx, &d, settings.as_object().unwrap().clone())
                    .await
                    .map(|_| ())
            }))
            .await
            .unwrap_err();
        let RunError::Failed { error, .. } = err else {
            panic!("expected a failed run, got {err:?}")
        };
        assert_eq!(
            error.to_string(),
            "configure on det: device 'det' rejected configure: there is no configuration attribute 'bogus' (known: Imax, center, sigma, noise, noise_multiplier)"
        );
        let _ = motor;
    });
}
