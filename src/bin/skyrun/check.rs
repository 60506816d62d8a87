//! `skyrun check`: validate a plan file and its device file, say what would
//! run, and what would make it fail at once (positions past a motor's limits,
//! plans without points, flyers without points), without running anything.
//! The device servers of `[[remote]]` tables are asked which devices they
//! serve (with the `nats` feature), so a plan naming them checks as it runs;
//! the PVs of EPICS devices are connected (with the `epics` feature), and
//! each one that does not connect is listed, with its device.

use std::process::ExitCode;

use skyrun::config::families;

#[cfg(not(feature = "nats"))]
use crate::load::load;
use crate::load::Loaded;
use crate::{CheckArgs, Failure};

/// Checks the files and prints a summary; nothing is spawned. Exit 2 when
/// the plan is sure to fail.
pub fn check(args: &CheckArgs) -> Result<ExitCode, Failure> {
    // `[[remote]]` servers are asked which devices they serve, as `run` does.
    #[cfg(feature = "nats")]
    let (loaded, _) = crate::load::load_with(&args.plan, args.devices.as_deref(), |set| {
        args.remote.resolve(set)
    })?;
    #[cfg(not(feature = "nats"))]
    let loaded = load(&args.plan, args.devices.as_deref())?;
    print!("{}", describe(&loaded));
    #[allow(unused_mut)]
    let mut problems: Vec<String> = loaded
        .plan
        .problems(&loaded.devices)
        .iter()
        .map(ToString::to_string)
        .collect();
    #[cfg(not(feature = "epics"))]
    crate::load::no_epics(&loaded.devices)?;
    #[cfg(feature = "epics")]
    match args.epics.resolve(&loaded.devices) {
        Ok(e) => {
            if let Some((n, took)) = e.connected {
                println!(
                    "epics:       {} connected in {:.3} s",
                    plural(n, "PV"),
                    took.as_secs_f64()
                );
            }
        }
        Err(Failure::Runtime(e)) => problems.push(format!("{e:#}")),
        Err(e) => return Err(e),
    }
    if problems.is_empty() {
        println!("ok: {} is valid", args.plan.display());
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!(
        "error: {} would fail: {} problem{} found before running",
        args.plan.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(2))
}

/// Names, with families summarised (`m0..m99 (family 'm', 100)`), or `-`.
fn list(l: &Loaded, names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        families::summarize(names, &l.devices).join(", ")
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The summary `check` prints (and `run` shows nothing of).
pub fn describe(l: &Loaded) -> String {
    let s = &l.summary;
    let counts: Vec<String> = l
        .devices
        .counts()
        .iter()
        .map(|(k, n)| plural(*n, k.as_str()))
        .collect();
    let mut out = String::new();
    out.push_str(&format!("plan file:   {}\n", l.plan.file()));
    out.push_str(&format!(
        "device file: {} ({}: {})\n",
        l.devices_path.display(),
        plural(l.devices.len(), "device"),
        counts.join(", ")
    ));
    let fams = families::families(&l.devices);
    if !fams.is_empty() {
        let f: Vec<String> = fams
            .iter()
            .map(|(p, k, n)| format!("'{p}' ({})", plural(*n, k)))
            .collect();
        out.push_str(&format!("families:    {}\n", f.join(", ")));
    }
    if s.description.len() == 1 && matches!(l.plan.body(), skyrun::config::PlanBody::Standard(_)) {
        out.push_str(&format!("plan:        {}\n", s.description[0]));
    } else {
        out.push_str(&format!(
            "plan:        {} ({})\n",
            s.plan,
            plural(s.description.len(), "step")
        ));
        for d in &s.description {
            out.push_str(&format!("  {d}\n"));
        }
    }
    out.push_str(&format!("detectors:   {}\n", list(l, &s.detectors)));
    out.push_str(&format!("motors:      {}\n", list(l, &s.motors)));
    if !s.signals.is_empty() {
        out.push_str(&format!("signals:     {}\n", list(l, &s.signals)));
    }
    if !s.flyers.is_empty() {
        out.push_str(&format!("flyers:      {}\n", list(l, &s.flyers)));
    }
    out.push_str(&format!("runs:        {}\n", s.runs));
    out.push_str(&format!("points:      {}\n", s.num_points));
    let md: Vec<String> = l.plan.metadata().keys().cloned().collect();
    out.push_str(&format!(
        "metadata:    {}\n",
        if md.is_empty() {
            "-".into()
        } else {
            md.join(", ")
        }
    ));
    out
}
