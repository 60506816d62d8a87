//! `skyrun bench`: the benchmark scenarios of [`skyrun::bench`], each case in
//! a fresh process (so peak memory is its own), medians over repeats, shown
//! as a table next to the physical limit measured in the same run, or as
//! one JSON object per line with `--json`. Given a plan file, benchmarks
//! that plan instead (see [`plan`]).

mod plan;

use std::process::{Command, ExitCode};

use anyhow::{anyhow, Context};
use skyrun::bench::{run_case, BenchResult, Case, Scenario, SpanProcessorKind};

use crate::{BenchArgs, Failure};

/// The default suite: the limits, every scenario traced and not, and idle
/// memory, each with its default size.
fn suite(span_processor: SpanProcessorKind) -> Vec<Case> {
    let case = |scenario, trace| {
        let (devices, messages) = default_size(scenario);
        Case {
            scenario,
            trace,
            devices,
            messages,
            span_processor,
        }
    };
    let mut cases = vec![
        case(Scenario::LimitActixRoundtrip, false),
        case(Scenario::LimitCrossbeam, false),
        case(Scenario::LimitActixActors, false),
    ];
    for trace in [false, true] {
        for scenario in [
            Scenario::Null,
            Scenario::Set,
            Scenario::Count,
            Scenario::Many,
        ] {
            cases.push(case(scenario, trace));
        }
    }
    cases.push(case(Scenario::Idle, false));
    cases
}

fn default_size(s: Scenario) -> (usize, u64) {
    match s {
        Scenario::Null | Scenario::LimitActixRoundtrip => (1, 1_000_000),
        Scenario::Set => (1, 200_000),
        Scenario::Count => (1, 100_000),
        Scenario::LimitCrossbeam => (1, 10_000_000),
        Scenario::Many => (100_000, 300_000),
        Scenario::Idle | Scenario::LimitActixActors => (100_000, 100_000),
    }
}

/// Runs `skyrun bench`.
pub fn bench(args: &BenchArgs) -> Result<ExitCode, Failure> {
    if let Some(plan) = &args.plan {
        return plan::bench_plan_file(plan, args);
    }
    #[cfg(feature = "nats")]
    if args.scenario.as_deref() == Some("remote") {
        return crate::bench_remote::bench_remote(args);
    }
    #[cfg(feature = "epics")]
    if args.scenario.as_deref() == Some("epics") {
        return crate::bench_epics::bench_epics(args);
    }
    #[cfg(not(feature = "epics"))]
    if args.scenario.as_deref() == Some("epics") {
        return Err(Failure::Usage(anyhow!(
            "--scenario epics needs a skyrun built with the `epics` feature"
        )));
    }
    if args.child {
        // One case, in this process: print its JSON line for the parent.
        let case = single_case(args)?;
        println!("{}", run_case(&case).line().to_json());
        return Ok(ExitCode::SUCCESS);
    }
    let cases = match &args.scenario {
        Some(_) => {
            let case = single_case(args)?;
            let traces = if args.trace.is_some() {
                vec![case.trace]
            } else {
                vec![false, true]
            };
            traces
                .into_iter()
                .map(|trace| Case { trace, ..case })
                .collect()
        }
        None => suite(span_processor(args)?),
    };
    let mut results = Vec::new();
    for case in &cases {
        let mut reps: Vec<BenchResult> = (0..args.repeat.max(1))
            .map(|_| run_child(case))
            .collect::<anyhow::Result<_>>()
            .map_err(Failure::Runtime)?;
        reps.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let median = reps.swap_remove(reps.len() / 2);
        if args.json {
            println!("{}", median.line().to_json());
        } else {
            eprintln!("  measured {} (trace {})", median.scenario, median.trace);
        }
        results.push(median);
    }
    if !args.json {
        print!("{}", table(&results));
    }
    Ok(ExitCode::SUCCESS)
}

fn single_case(args: &BenchArgs) -> Result<Case, Failure> {
    let scenario: Scenario = match &args.scenario {
        Some(s) => s.parse().map_err(|e: String| Failure::Usage(anyhow!(e)))?,
        None => return Err(Failure::Usage(anyhow!("--child needs --scenario"))),
    };
    let (devices, messages) = default_size(scenario);
    let trace = match args.trace.as_deref() {
        None | Some("off") => false,
        Some("on") => true,
        Some(other) => {
            return Err(Failure::Usage(anyhow!(
                "--trace must be 'on' or 'off', not '{other}'"
            )))
        }
    };
    Ok(Case {
        scenario,
        trace,
        devices: device_count(args)?.unwrap_or(devices).max(1),
        messages: args.messages.unwrap_or(messages).max(1),
        span_processor: span_processor(args)?,
    })
}

/// `--devices N` of the built-in scenarios.
pub(crate) fn device_count(args: &BenchArgs) -> Result<Option<usize>, Failure> {
    args.devices
        .as_deref()
        .map(|s| {
            s.parse::<usize>().map_err(|_| {
                Failure::Usage(anyhow!(
                    "--devices must be a number of devices for the built-in scenarios, not '{s}' (a device file goes with a plan file: skyrun bench PLAN.toml --devices {s})"
                ))
            })
        })
        .transpose()
}

fn span_processor(args: &BenchArgs) -> Result<SpanProcessorKind, Failure> {
    args.span_processor
        .parse()
        .map_err(|e: String| Failure::Usage(anyhow!("--span-processor: {e}")))
}

/// Measures `case` in a fresh copy of this program.
fn run_child(case: &Case) -> anyhow::Result<BenchResult> {
    let exe = std::env::current_exe().context("finding the skyrun executable")?;
    let out = Command::new(exe)
        .args(["bench", "--child", "--scenario", case.scenario.name()])
        .args(["--trace", if case.trace { "on" } else { "off" }])
        .args(["--devices", &case.devices.to_string()])
        .args(["--messages", &case.messages.to_string()])
        .args(["--span-processor", case.span_processor.name()])
        .output()
        .context("running a benchmark case")?;
    if !out.status.success() {
        return Err(anyhow!(
            "benchmark case {} failed: {}",
            case.scenario.name(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(line.trim()).context("reading a case's result")?;
    Ok(BenchResult {
        scenario: case.scenario.name(),
        trace: if case.trace { "on" } else { "off" },
        span_processor: case.trace.then_some(case.span_processor),
        devices: case.devices,
        messages: case.messages,
        seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        per_second: v["per_second"].as_f64().unwrap_or(f64::NAN),
        spans_exported: v["spans_exported"].as_u64().unwrap_or(0),
        spans_dropped: v["spans_dropped"].as_u64().unwrap_or(0),
        peak_rss_bytes: v["peak_rss_bytes"].as_u64().unwrap_or(0),
    })
}

fn human(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.1}"),
    }
}

/// The results as a table: each message throughput as a ratio to an actix
/// round trip's, and each many-device case's memory per device as a ratio
/// to bare actix actors', in columns of their own.
fn table(results: &[BenchResult]) -> String {
    let find = |name: &str| results.iter().find(|r| r.scenario == name);
    let roundtrip = find("limit-actix-roundtrip").map(|r| r.per_second);
    let bare = find("limit-actix-actors").map(|r| r.peak_rss_bytes as f64 / r.devices as f64);
    let mut s = format!(
        "{:<22} {:>7} {:>8} {:>10} {:>9} {:>10} {:>13} {:>11} {:>10} {:>8} {:>10} {:>9}\n",
        "scenario",
        "trace",
        "devices",
        "messages",
        "seconds",
        "per s",
        "vs roundtrip",
        "mem vs bare",
        "spans",
        "dropped",
        "peak RSS",
        "B/device"
    );
    let mut faster_than_roundtrip = false;
    for r in results {
        let per_device = r.peak_rss_bytes as f64 / r.devices as f64;
        let limit = r.scenario.starts_with("limit-");
        let speed = match r.scenario {
            "null" | "set" | "count" => roundtrip.map(|l| {
                let x = r.per_second / l;
                faster_than_roundtrip |= x > 1.0;
                format!("{x:.2}x{}", if x > 1.0 { "*" } else { "" })
            }),
            _ if limit => Some("(limit)".into()),
            _ => None,
        }
        .unwrap_or_else(|| "-".into());
        let memory = match r.scenario {
            "many" | "idle" => bare.map(|b| format!("{:.2}x", per_device / b)),
            _ if limit => Some("(limit)".into()),
            _ => None,
        }
        .unwrap_or_else(|| "-".into());
        let round = if r.scenario == "many" {
            format!(" ({:.3} s/round)", r.devices as f64 / r.per_second)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "{:<22} {:>7} {:>8} {:>10} {:>9.3} {:>10} {:>13} {:>11} {:>10} {:>8} {:>9}M {:>9}{round}\n",
            r.scenario,
            // A traced case says "on", or the span processor when it is not the batch one.
            match r.span_processor {
                Some(k) if k != SpanProcessorKind::Batch => k.name(),
                _ => r.trace,
            },
            r.devices,
            r.messages,
            r.seconds,
            human(r.per_second),
            speed,
            memory,
            r.spans_exported,
            r.spans_dropped,
            r.peak_rss_bytes / (1 << 20),
            if r.devices > 1 {
                format!("{per_device:.0}")
            } else {
                "-".into()
            },
        ));
    }
    s.push_str(
        "\nvs roundtrip: messages per second / actix round trips per second (limit-actix-roundtrip).\n\
         mem vs bare: peak memory per device / that of bare actix actors (limit-actix-actors).\n",
    );
    if faster_than_roundtrip {
        s.push_str(
            "* more messages per second than round trips: a null message never leaves the \
             engine's actor (no device, no actor hop), so a round trip does not bound it.\n",
        );
    }
    s
}
