//! How `skyrun check` describes each step, one line a step.

use std::fmt;

use super::Step;

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = |g: &Option<String>, wait: bool| {
            let mut s = String::new();
            if let Some(g) = g {
                s.push_str(&format!(" (group {g})"));
            }
            if !wait {
                s.push_str(" without waiting");
            }
            s
        };
        match self {
            Step::Null => f.write_str("null"),
            Step::Checkpoint => f.write_str("checkpoint"),
            Step::Sleep { seconds } => write!(f, "sleep {seconds} s"),
            Step::Wait { group, timeout } => {
                f.write_str("wait")?;
                match group {
                    Some(g) => write!(f, " for group {g}")?,
                    None => f.write_str(" for the ungrouped statuses")?,
                }
                if let Some(t) = timeout {
                    write!(f, ", at most {t} s")?;
                }
                Ok(())
            }
            Step::OpenRun { md } => {
                f.write_str("open_run")?;
                if !md.is_empty() {
                    let keys: Vec<&str> = md.keys().map(String::as_str).collect();
                    write!(f, " with metadata {}", keys.join(", "))?;
                }
                Ok(())
            }
            Step::CloseRun { exit_status, .. } => {
                write!(f, "close_run")?;
                if let Some(e) = exit_status {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
            Step::Move {
                moves,
                relative,
                spread,
            } => {
                let (stub, arrow) = if *relative {
                    ("mvr", "by")
                } else {
                    ("mv", "to")
                };
                if let Some((xs, _)) = spread {
                    let names: Vec<&str> = moves.iter().map(|(d, _)| d.name.as_str()).collect();
                    return write!(f, "{stub} [{}] {arrow} {xs:?}", names.join(", "));
                }
                write!(
                    f,
                    "{stub} {}",
                    crate::config::families::describe_moves(moves, arrow)
                )
            }
            Step::AbsSet {
                device,
                value,
                group: g,
                wait,
                ..
            } => {
                write!(f, "abs_set {} to {value}{}", device.name, group(g, *wait))
            }
            Step::Trigger {
                device,
                group: g,
                wait,
            } => write!(f, "trigger {}{}", device.name, group(g, *wait)),
            Step::TriggerAndRead { detectors, stream } => write!(
                f,
                "trigger_and_read [{}] into stream '{stream}'",
                crate::config::families::ref_names(detectors)
            ),
            Step::Kickoff {
                flyer,
                group: g,
                wait,
            } => write!(f, "kickoff {}{}", flyer.name, group(g, *wait)),
            Step::Complete {
                flyer,
                group: g,
                wait,
            } => write!(f, "complete {}{}", flyer.name, group(g, *wait)),
            Step::Collect { flyer } => write!(f, "collect {}", flyer.name),
            Step::Plan(p) => p.fmt(f),
            Step::Message(m) => m.fmt(f),
        }
    }
}
