//! `skyrun bench PLAN.toml`: the user's own plan, run untraced and traced,
//! reported as JSON lines (asserted here: the message counts per command,
//! which the plan fixes, and the shape of the timings, never their values).

mod process;

use process::*;
use serde_json::Value;

fn lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count(mode: &Value, command: &str) -> u64 {
    mode["commands"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["command"] == command))
        .map_or(0, |c| c["count"].as_u64().unwrap())
}

#[test]
fn bench_of_the_scan_example_on_ideal_devices_reports_both_modes() {
    let out = skyrun(&[
        "bench",
        "examples/scan.toml",
        "--devices",
        "examples/ideal.toml",
        "--repeat",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let modes = lines(&out);
    assert_eq!(modes.len(), 2, "one line per mode");
    let (untraced, traced) = (&modes[0], &modes[1]);
    assert_eq!(
        (untraced["trace"].as_str(), traced["trace"].as_str()),
        (Some("off"), Some("on"))
    );
    for m in &modes {
        assert_eq!(m["plan"], "scan");
        assert_eq!(m["devices"], "examples/ideal.toml");
        assert_eq!(m["runs"], 2);
        assert_eq!(m["failed_runs"], 0);
        assert_eq!(m["walls_s"].as_array().unwrap().len(), 2);
        assert!(m["wall_s"].as_f64().unwrap() > 0.0);
        // 21 points x (checkpoint, set, wait, 3 triggers, wait, create,
        // 3 reads, save) + open_run, close_run, 3 stages, 3 unstages.
        assert_eq!(m["messages"], 21 * 12 + 8);
    }
    // Per command: counted over both traced runs.
    for (command, per_run) in [
        ("set", 21),
        ("trigger", 63),
        ("read", 63),
        ("wait", 42),
        ("checkpoint", 21),
        ("create", 21),
        ("save", 21),
        ("stage", 3),
        ("unstage", 3),
        ("open_run", 1),
        ("close_run", 1),
    ] {
        assert_eq!(count(traced, command), 2 * per_run, "{command}");
    }
    for c in traced["commands"].as_array().unwrap() {
        let (p50, p99) = (c["p50_s"].as_f64().unwrap(), c["p99_s"].as_f64().unwrap());
        assert!(p50 <= p99, "{c}");
    }
    let split = &traced["split"];
    for k in [
        "engine_s",
        "waiting_on_statuses_s",
        "device_requests_s",
        "sleeping_s",
    ] {
        assert!(split[k].as_f64().unwrap() >= 0.0, "{k}: {split}");
    }
    assert!(
        untraced.get("commands").is_none(),
        "untraced runs record no spans"
    );
}

#[test]
fn bench_of_a_plan_whose_device_always_fails_reports_it_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("skyrun-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("devices.toml"),
        "seed = 42\n[[motor]]\nname = 'm'\nfaults.set_fails = 1.0\n[[detector]]\nname = 'd'\nmotor = 'm'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("plan.toml"),
        "devices = 'devices.toml'\n[plan]\nname = 'scan'\ndetectors = ['d']\nmotor = 'm'\nstart = 0\nstop = 1\nnum = 3\n",
    )
    .unwrap();
    let plan = dir.join("plan.toml");
    let out = skyrun(&["bench", plan.to_str().unwrap(), "--repeat", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let modes = lines(&out);
    assert_eq!(modes.len(), 2);
    let why = "set on m failed: m: the move to 0 failed (simulated fault)";
    for m in &modes {
        assert_eq!(m["failed_runs"], 1);
        assert_eq!(m["failure"], why);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("fail: 2 of the runs failed; the first: {why}")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_flags_of_the_scenarios_are_refused_with_a_plan_and_the_reverse() {
    let out = skyrun(&["bench", "examples/scan.toml", "--scenario", "set"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--scenario is for the built-in scenarios, not with a plan file"));
    let out = skyrun(&[
        "bench",
        "--scenario",
        "set",
        "--devices",
        "examples/ideal.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "--devices must be a number of devices for the built-in scenarios, not 'examples/ideal.toml'"
    ));
}
