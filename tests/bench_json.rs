//! `skyrun bench --json` writes one schema whatever it measured: the lines
//! of a built-in scenario and of a plan file are read by the same parser
//! ([`BenchLine::parse`]), with the same key for the same figure.

mod process;

use process::*;
use skyrun::bench::{BenchLine, Devices};

fn bench_lines(args: &[&str]) -> Vec<BenchLine> {
    let args: Vec<&str> = ["bench"].iter().chain(args).copied().collect();
    let out = skyrun(&args);
    assert!(
        out.status.success(),
        "skyrun bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| BenchLine::parse(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// What every line of a throughput measurement carries, under the same keys.
fn check_throughput(line: &BenchLine) -> (u64, f64, f64) {
    let messages = line
        .messages
        .unwrap_or_else(|| panic!("messages: {line:?}"));
    let seconds = line.seconds.unwrap_or_else(|| panic!("seconds: {line:?}"));
    let per_second = line
        .per_second
        .unwrap_or_else(|| panic!("per_second: {line:?}"));
    assert!(messages > 0 && seconds > 0.0, "{line:?}");
    let expected = messages as f64 / seconds;
    assert!(
        (per_second - expected).abs() <= 1e-9 * expected,
        "per_second is messages / seconds: {line:?}"
    );
    assert!(
        !line.details.contains_key("msgs_per_s"),
        "the throughput is per_second only: {line:?}"
    );
    (messages, seconds, per_second)
}

#[test]
fn built_in_scenarios_and_plan_files_write_the_same_schema() {
    let builtin = bench_lines(&[
        "--scenario",
        "null",
        "--messages",
        "2000",
        "--trace",
        "off",
        "--repeat",
        "1",
        "--json",
    ]);
    let plan = bench_lines(&[
        "examples/scan.toml",
        "--devices",
        "examples/ideal.toml",
        "--repeat",
        "1",
        "--json",
    ]);
    assert_eq!(builtin.len(), 1, "{builtin:?}");
    assert_eq!(plan.len(), 2, "{plan:?}");

    let null = &builtin[0];
    assert_eq!(null.scenario, "null");
    assert_eq!(null.trace.as_deref(), Some("off"));
    assert_eq!(null.devices, Some(Devices::Count(1)));
    assert_eq!(check_throughput(null).0, 2000);
    assert_eq!(null.details["spans_exported"], 0);

    for (line, trace) in plan.iter().zip(["off", "on"]) {
        assert_eq!(line.scenario, "plan");
        assert_eq!(line.plan.as_deref(), Some("scan"));
        assert_eq!(line.trace.as_deref(), Some(trace));
        assert_eq!(
            line.devices,
            Some(Devices::File("examples/ideal.toml".into()))
        );
        let (messages, seconds, _) = check_throughput(line);
        assert_eq!(messages, 21 * 12 + 8);
        assert_eq!(line.details["wall_s"].as_f64(), Some(seconds));
        assert_eq!(line.details["runs"], 1);
    }
}
