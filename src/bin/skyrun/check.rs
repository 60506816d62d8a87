//! `skyrun check`: validate a plan file and its device file, print what would run.

use std::process::ExitCode;

use crate::load::{load, Loaded};
use crate::{CheckArgs, Failure};

/// Checks the files and prints a summary; nothing is spawned.
pub fn check(args: &CheckArgs) -> Result<ExitCode, Failure> {
    let loaded = load(&args.plan, args.devices.as_deref())?;
    print!("{}", describe(&loaded));
    println!("ok: {} is valid", args.plan.display());
    Ok(ExitCode::SUCCESS)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

/// The summary `check` prints (and `run` shows nothing of).
pub fn describe(l: &Loaded) -> String {
    let s = &l.summary;
    let counts: Vec<String> = l
        .devices
        .counts()
        .iter()
        .map(|(k, n)| format!("{n} {}{}", k.as_str(), if *n == 1 { "" } else { "s" }))
        .collect();
    let mut out = String::new();
    out.push_str(&format!("plan file:   {}\n", l.plan.file()));
    out.push_str(&format!(
        "device file: {} ({} devices: {})\n",
        l.devices_path.display(),
        l.devices.len(),
        counts.join(", ")
    ));
    if s.description.len() == 1 && matches!(l.plan.body(), skyrun::config::PlanBody::Standard(_)) {
        out.push_str(&format!("plan:        {}\n", s.description[0]));
    } else {
        out.push_str(&format!(
            "plan:        {} ({} steps)\n",
            s.plan,
            s.description.len()
        ));
        for d in &s.description {
            out.push_str(&format!("  {d}\n"));
        }
    }
    out.push_str(&format!("detectors:   {}\n", list(&s.detectors)));
    out.push_str(&format!("motors:      {}\n", list(&s.motors)));
    if !s.flyers.is_empty() {
        out.push_str(&format!("flyers:      {}\n", list(&s.flyers)));
    }
    out.push_str(&format!("runs:        {}\n", s.runs));
    out.push_str(&format!("points:      {}\n", s.num_points));
    let md: Vec<String> = l.plan.metadata().keys().cloned().collect();
    out.push_str(&format!("metadata:    {}\n", list(&md)));
    out
}
