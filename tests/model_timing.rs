//! Modelled devices: latencies drawn from distributions and faults at a
//! rate, all from a seed, so a run replays exactly. Nothing here asserts a
//! duration: the tests assert the seeded draws and the sequences of
//! documents and failures, which must be the same on every run with the
//! same seed (and differ with another).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{run, Docs};
use serde_json::Value;
use skyrun::config::{DeviceConfig, DeviceSet};
use skyrun::{plan_stubs as bps, plans, Plan, RunEngine};
use skyrun_actors::sim::{Faults, Latency, SynAxis, SynGauss, SynSignal, TimedOp, Timing};
use skyrun_actors::{DeviceHandle, Readable, SpanTracer};

/// What one request of a looping plan gave: "ok" or the error.
type Outcomes = Vec<String>;

#[derive(Clone, Copy)]
enum Op {
    Set,
    Trigger,
    Read,
}

/// Runs `n` set+wait, trigger+wait or read requests on `device`, recording
/// each outcome and going on after a failure, on an engine whose request
/// timeout is 50 ms.
fn outcomes(device: impl FnOnce() -> DeviceHandle + Send + 'static, op: Op, n: usize) -> Outcomes {
    run(async move {
        let re = RunEngine::builder()
            .request_timeout(Some(Duration::from_millis(50)))
            .build();
        let d = device();
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        re.run(Plan::new("loop", move |ctx| async move {
            for i in 0..n {
                let r = match op {
                    Op::Set => bps::abs_set(&ctx, &d, i as f64, None, true)
                        .await
                        .map(|_| ()),
                    Op::Trigger => bps::trigger(&ctx, &d, None, true).await.map(|_| ()),
                    Op::Read => bps::read(&ctx, &d).await.map(|_| ()),
                };
                o.lock()
                    .unwrap()
                    .push(r.map_or_else(|e| e.to_string(), |()| "ok".to_owned()));
            }
            Ok(())
        }))
        .await
        .expect("the plan handles every failure itself");
        let v = out.lock().unwrap().clone();
        v
    })
}

fn count(o: &Outcomes, what: &str) -> usize {
    o.iter().filter(|s| s.as_str() == what).count()
}

#[test]
fn a_set_that_fails_strikes_at_the_same_sets_on_every_run() {
    let motor = |seed| {
        move || {
            DeviceHandle::spawn(
                SynAxis::new("th")
                    .with_seed(seed)
                    .with_faults(Faults::none().set_fails(0.3).unwrap()),
            )
        }
    };
    let a = outcomes(motor(42), Op::Set, 30);
    assert_eq!(
        a,
        outcomes(motor(42), Op::Set, 30),
        "same seed, same failures"
    );
    assert_ne!(
        a,
        outcomes(motor(7), Op::Set, 30),
        "another seed, other failures"
    );
    let failed: Vec<_> = a.iter().filter(|s| *s != "ok").collect();
    assert!(!failed.is_empty() && failed.len() < 30, "{a:?}");
    for (i, s) in a.iter().enumerate() {
        if s != "ok" {
            assert_eq!(
                s,
                &format!("set on th failed: th: the move to {i} failed (simulated fault)")
            );
        }
    }
}

#[test]
fn a_trigger_that_fails_strikes_at_the_same_triggers_on_every_run() {
    let det = || {
        let m = SynAxis::new("m");
        DeviceHandle::spawn(
            SynGauss::new("det", m.probe(), 0.0, 1.0, 1.0)
                .with_seed(42)
                .with_faults(Faults::none().trigger_fails(0.25).unwrap()),
        )
    };
    let a = outcomes(det, Op::Trigger, 40);
    assert_eq!(a, outcomes(det, Op::Trigger, 40));
    let fail = "trigger on det failed: det: trigger failed (simulated fault)";
    assert!(count(&a, fail) > 0 && count(&a, "ok") > 0, "{a:?}");
    assert_eq!(count(&a, fail) + count(&a, "ok"), 40, "{a:?}");
}

#[test]
fn a_status_that_never_completes_times_out_at_the_same_sets_on_every_run() {
    let sig = || {
        DeviceHandle::spawn(
            SynSignal::new("gap", 0.0)
                .with_timeout(0.05)
                .with_seed(42)
                .with_faults(Faults::none().never_completes(0.3).unwrap()),
        )
    };
    let a = outcomes(sig, Op::Set, 20);
    assert_eq!(a, outcomes(sig, Op::Set, 20));
    let timed_out = "set on gap failed: status timed out after 0.05 s";
    assert!(count(&a, timed_out) > 0 && count(&a, "ok") > 0, "{a:?}");
    assert_eq!(count(&a, timed_out) + count(&a, "ok"), 20, "{a:?}");
}

#[test]
fn a_device_that_stops_answering_never_answers_again_and_replays() {
    let sig = || {
        DeviceHandle::spawn(
            SynSignal::new("temperature", 1.0)
                .with_seed(42)
                .with_faults(Faults::none().stops_answering(0.1).unwrap()),
        )
    };
    let a = outcomes(sig, Op::Read, 25);
    assert_eq!(a, outcomes(sig, Op::Read, 25));
    let first = a
        .iter()
        .position(|s| s != "ok")
        .expect("it stops answering");
    assert!(first > 0, "it answered at first: {a:?}");
    assert!(
        a[first..]
            .iter()
            .all(|s| s
                == "read on temperature: device 'temperature' did not answer read within 0.05 s"),
        "{a:?}"
    );
}

#[test]
fn each_distribution_draws_the_same_latencies_from_the_same_seed() {
    for l in [
        Latency::fixed(0.002).unwrap(),
        Latency::uniform(0.001, 0.003).unwrap(),
        Latency::normal(0.002, 0.0005).unwrap(),
        Latency::lognormal(-6.0, 0.5).unwrap(),
    ] {
        let draws = |seed, name: &str| {
            let mut t = Timing::seeded(seed).with_latency(TimedOp::Read, l);
            t.bind(name);
            (0..50)
                .map(|_| t.latency(TimedOp::Read))
                .collect::<Vec<_>>()
        };
        let a = draws(42, "det");
        assert_eq!(a, draws(42, "det"), "{l}");
        assert!(a.iter().all(|x| *x >= 0.0), "{l}");
        match l {
            Latency::Fixed(v) => assert!(a.iter().all(|x| *x == v)),
            Latency::Uniform { low, high } => {
                assert!(a.iter().all(|x| (low..=high).contains(x)), "{a:?}");
                assert_ne!(a, draws(43, "det"));
            }
            _ => {
                assert_ne!(a, draws(43, "det"), "{l} depends on the seed");
                assert_ne!(a, draws(42, "det2"), "{l}: each device its own stream");
            }
        }
    }
}

/// A device file using every distribution and the acquisition keys.
fn beamline(seed: u64) -> String {
    format!(
        r#"
seed = {seed}
[[motor]]
name = "th"
velocity = 200.0
acceleration = 2000.0
timeout = 5.0
latency.set = {{ dist = "lognormal", mu = -7.0, sigma = 0.5 }}
latency.read = {{ dist = "uniform", low = 0.0001, high = 0.0005 }}
latency.stage = 0.0005
[[detector]]
name = "det"
motor = "th"
imax = 500.0
noise = "poisson"
exposure_time = 0.001
readout_time = 0.0005
dead_time = 0.0005
latency.trigger = {{ dist = "normal", mean = 0.0005, std = 0.0002 }}
latency.read = {{ dist = "fixed", value = 0.0002 }}
[[motor_family]]
prefix = "s"
count = 2
velocity = 100.0
latency.set = 0.0005
"#
    )
}

/// The event data of a 7-point scan of `det` over `th` on `beamline(seed)`.
fn scan_data(seed: u64) -> Vec<serde_json::Map<String, Value>> {
    let set = DeviceSet::parse(&beamline(seed), "beamline.toml").unwrap();
    run(async move {
        let devices = set.spawn(SpanTracer::disabled());
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let (th, det) = (devices.get("th").unwrap(), devices.get("det").unwrap());
        re.run(plans::scan(vec![det.clone()], th, -1.0, 1.0, 7))
            .await
            .unwrap();
        assert_eq!(
            docs.names(),
            [
                "start",
                "descriptor",
                "event",
                "event",
                "event",
                "event",
                "event",
                "event",
                "event",
                "stop"
            ]
        );
        docs.events()
            .into_iter()
            .map(|e| e.data.into_iter().collect())
            .collect()
    })
}

#[test]
fn a_modelled_beamline_replays_the_same_documents_from_its_seed() {
    let a = scan_data(42);
    assert_eq!(a, scan_data(42), "same seed, same documents");
    assert_ne!(a, scan_data(43), "another seed, other detector noise");
    let th: Vec<f64> = a.iter().map(|d| d["th"].as_f64().unwrap()).collect();
    for (i, x) in th.iter().enumerate() {
        let want = -1.0 + 2.0 * i as f64 / 6.0;
        assert!(
            (x - want).abs() < 1e-12,
            "point {i}: the motor reached {x}, not {want}"
        );
    }
}

#[test]
fn the_device_file_model_reaches_the_spawned_devices() {
    let set = DeviceSet::parse(&beamline(42), "beamline.toml").unwrap();
    let DeviceConfig::Detector(det) = &set.get("det").unwrap().config else {
        panic!("det is a detector")
    };
    assert_eq!(
        (det.readout_time, det.dead_time, det.model.latency.len()),
        (0.0005, 0.0005, 2)
    );
    let DeviceConfig::Motor(s1) = &set.get("s1").unwrap().config else {
        panic!("s1 is a motor")
    };
    assert_eq!(
        s1.model.latency,
        [(TimedOp::Set, Latency::fixed(0.0005).unwrap())],
        "a family's model reaches each member"
    );
    run(async move {
        let devices = set.spawn(SpanTracer::disabled());
        let cx = opentelemetry::Context::new();
        let reply = devices
            .get("th")
            .unwrap()
            .request(skyrun_actors::DeviceOp::ReadConfiguration, &cx)
            .await
            .unwrap();
        let skyrun_actors::DeviceReply::Readings(r) = reply else {
            panic!("readings")
        };
        assert_eq!(r["th_acceleration"].value, Value::from(2000.0));
    });
    // Without a model, a motor reports ophyd.sim's acceleration of 1.
    assert_eq!(
        SynAxis::new("m").read_configuration()["m_acceleration"].value,
        Value::from(1.0)
    );
}

#[test]
fn bad_model_keys_are_named_with_file_line_and_column() {
    let err = |t: &str| DeviceSet::parse(t, "d.toml").unwrap_err().to_string();
    let cases = [
        ("seed = -1\n", "d.toml:1:8: 'seed' must be a non-negative integer, got -1"),
        ("[[motor]]\nname = 'm'\nlatency.set = { dist = 'normal', mean = 1 }\n",
         "d.toml:3:15: latency 'set' of [[motor]]: 'normal' needs 'std'"),
        ("[[motor]]\nname = 'm'\nlatency.set = { dist = 'uniform', low = 2, high = 1 }\n",
         "d.toml:3:15: latency 'set' of [[motor]]: uniform latency needs low <= high, got low 2, high 1"),
        ("[[motor]]\nname = 'm'\nlatency.set = -0.5\n",
         "d.toml:3:15: latency 'set' of [[motor]]: a fixed latency must not be negative, got -0.5"),
        ("[[motor]]\nname = 'm'\nlatency.set = { dist = 'fixed', value = 1, std = 2 }\n",
         "d.toml:3:15: latency 'set' of [[motor]]: key 'std' is not a parameter of 'fixed' (it takes: value)"),
        ("[[motor]]\nname = 'm'\nlatency.move = 1\n", "d.toml:3:9: unknown key 'move'; expected one of: read, trigger, set, stage"),
        ("[[detector]]\nname = 'd'\nmotor = 'm'\nfaults.trigger_fails = 0.8\nfaults.never_completes = 0.5\ntimeout = 1\n[[motor]]\nname = 'm'\n",
         "d.toml:5:26: [[detector]] faults: 'trigger_fails' (0.8) and 'never_completes' (0.5) add up to more than 1"),
        ("[[signal]]\nname = 's'\nfaults.never_completes = 0.1\n",
         "d.toml:3:26: 'never_completes' needs a 'timeout' in [[signal]]: without one a status that never completes hangs the plan"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(
            got.starts_with(want),
            "for {text:?}:\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn a_trigger_within_the_dead_time_waits_for_it_and_readout_delays_completion() {
    run(async {
        let cx = opentelemetry::Context::new();
        let trigger = |d: DeviceHandle| {
            let cx = cx.clone();
            async move {
                match d
                    .request(skyrun_actors::DeviceOp::Trigger, &cx)
                    .await
                    .unwrap()
                {
                    skyrun_actors::DeviceReply::Status(s) => s,
                    other => panic!("a status, not {other:?}"),
                }
            }
        };
        let m = SynAxis::new("m");
        // No exposure or readout, one minute of dead time: the first trigger
        // completes at once, the second must wait out the dead time.
        let dead = DeviceHandle::spawn(
            SynGauss::new("dead", m.probe(), 0.0, 1.0, 1.0).with_dead_time(60.0),
        );
        assert!(trigger(dead.clone()).await.done());
        assert!(!trigger(dead.clone()).await.done(), "inside the dead time");
        // A minute of readout: the trigger is not done when it returns.
        let slow = DeviceHandle::spawn(
            SynGauss::new("slow", m.probe(), 0.0, 1.0, 1.0).with_readout_time(60.0),
        );
        assert!(!trigger(slow).await.done(), "still reading out");
        // Without either, triggers complete at once, one after the other.
        let ideal = DeviceHandle::spawn(SynGauss::new("ideal", m.probe(), 0.0, 1.0, 1.0));
        assert!(trigger(ideal.clone()).await.done() && trigger(ideal).await.done());
    });
}
