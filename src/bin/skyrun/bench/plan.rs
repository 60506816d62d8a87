//! `skyrun bench PLAN.toml [--devices DEVICES.toml] [--repeat N] [--json]`:
//! the user's own plan, run N times untraced and N times traced (see
//! [`skyrun::bench::plan`]), shown as a table or, with `--json`, one JSON
//! object per line per mode (untraced, traced).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use skyrun::bench::plan::{bench_plan, ModeResult, PlanBench};
use skyrun::telemetry::profile::format_duration;

use crate::load::load;
use crate::{BenchArgs, Failure};

/// Benchmarks the plan file `plan`; exit 1 if any run of it failed.
pub fn bench_plan_file(plan: &Path, args: &BenchArgs) -> Result<ExitCode, Failure> {
    for (given, flag) in [
        (args.scenario.is_some(), "--scenario"),
        (args.messages.is_some(), "--messages"),
        (args.trace.is_some(), "--trace"),
        (args.child, "--child"),
    ] {
        if given {
            return Err(Failure::Usage(anyhow!(
                "{flag} is for the built-in scenarios, not with a plan file (a plan file runs both untraced and traced)"
            )));
        }
    }
    let devices = args.devices.as_deref().map(Path::new);
    let loaded = load(plan, devices)?;
    let report = bench_plan(&loaded.plan, &loaded.devices, args.repeat)?;
    if args.json {
        let devices = loaded.devices_path.display().to_string();
        for m in [&report.untraced, &report.traced] {
            println!("{}", m.line(&report.plan, &devices).to_json());
        }
    } else {
        print!(
            "{}",
            table(&report, &loaded.devices_path.display().to_string())
        );
    }
    let failed = report.untraced.failed_runs + report.traced.failed_runs;
    if failed > 0 {
        let why = report
            .untraced
            .failure
            .as_ref()
            .or(report.traced.failure.as_ref())
            .cloned()
            .unwrap_or_default();
        eprintln!("fail: {failed} of the runs failed; the first: {why}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn secs(s: f64) -> String {
    format_duration(Duration::from_secs_f64(s.max(0.0)))
}

fn row(m: &ModeResult) -> String {
    format!(
        "{:<10} {:>5} {:>9} {:>12} {:>12}",
        if m.trace == "on" {
            "traced"
        } else {
            "untraced"
        },
        m.runs,
        m.messages,
        secs(m.wall_s),
        format!("{:.1}", m.per_second),
    )
}

/// The report as text: both modes, per command statistics, the time split.
fn table(r: &PlanBench, devices: &str) -> String {
    let (u, t) = (&r.untraced, &r.traced);
    let mut s = format!("plan '{}' on {devices}\n\n", r.plan);
    s.push_str(&format!(
        "{:<10} {:>5} {:>9} {:>12} {:>12}\n",
        "mode", "runs", "messages", "wall (p50)", "msgs/s"
    ));
    s.push_str(&row(u));
    s.push('\n');
    s.push_str(&row(t));
    s.push_str(&format!(
        "   ({:.2}x the untraced wall time)\n",
        t.wall_s / u.wall_s
    ));
    s.push_str(&format!(
        "\nper command (traced, {} runs; latency = from sending the message to its reply)\n",
        t.runs
    ));
    s.push_str(&format!(
        "{:<16} {:>8} {:>12} {:>12} {:>12}\n",
        "command", "count", "p50", "p99", "total"
    ));
    for c in &t.commands {
        s.push_str(&format!(
            "{:<16} {:>8} {:>12} {:>12} {:>12}\n",
            c.command,
            c.count,
            secs(c.p50_s),
            secs(c.p99_s),
            secs(c.total_s)
        ));
    }
    if let Some(sp) = &t.split {
        let total = sp.engine_s + sp.waiting_on_statuses_s + sp.device_requests_s + sp.sleeping_s;
        let pct = |x: f64| {
            if total > 0.0 {
                100.0 * x / total
            } else {
                0.0
            }
        };
        s.push_str("\nwhere a run's time goes (the median traced run)\n");
        for (what, x) in [
            (
                "waiting on device statuses (wait)",
                sp.waiting_on_statuses_s,
            ),
            (
                "device requests (read, set, trigger, stage, ...)",
                sp.device_requests_s,
            ),
            ("the plan's sleeps", sp.sleeping_s),
            ("the engine itself (the rest)", sp.engine_s),
        ] {
            s.push_str(&format!("  {what:<50} {:>12} {:>6.1}%\n", secs(x), pct(x)));
        }
    }
    for m in [u, t] {
        if let Some(f) = &m.failure {
            s.push_str(&format!(
                "\n{} of {} {} runs failed; the first: {f}\n",
                m.failed_runs,
                m.runs,
                if m.trace == "on" {
                    "traced"
                } else {
                    "untraced"
                }
            ));
        }
    }
    s
}
