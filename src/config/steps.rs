//! Plan stubs listed in a plan file (`[[steps]]`), run in order.
//!
//! | stub | arguments |
//! |---|---|
//! | `null`, `checkpoint` | none |
//! | `sleep` | `seconds` |
//! | `wait` | `group` (default: the ungrouped statuses), `timeout` (s) |
//! | `open_run` | `md = { .. }` (merged over `[metadata]`) |
//! | `close_run` | `exit_status` (`success`, `fail`, `abort`), `reason` |
//! | `mv`, `mvr` | `motor` and `position`, or `motors = [..]` and `positions = [..]` (moved together) |
//! | `abs_set` | `device`, `value`, `group`, `wait` (default true) |
//! | `trigger` | `device`, `group`, `wait` (default true) |
//! | `trigger_and_read` | `detectors`, `stream` (default `primary`) |
//! | `kickoff`, `complete` | `flyer`, `group`, `wait` (default true) |
//! | `collect` | `flyer` |
//! | `stage`, `unstage`, `read`, `locate` (or `rd`) | `device` |
//! | `create` | `stream` (default `primary`) |
//! | `save`, `drop` | none |
//! | `declare_stream` | `devices`, `stream` (default `primary`) |
//! | `configure` | `device`, `settings = { .. }` |
//! | `pause` | `defer` (default false: pause now) |
//! | `count`, `scan`, `rel_scan`, `list_scan`, `grid_scan`, `fly` | the plan's arguments; the plan opens its own run |
//!
//! Runs must nest properly: `trigger_and_read`, `collect`, `create`, `save`,
//! `drop` and `declare_stream` need an open
//! run, a standard plan or `open_run` needs none, and every `open_run` needs a
//! later `close_run`. This is checked when the file is parsed.

use serde_json::{Map, Value};
use toml::Spanned;

mod display;
mod messages;
mod run;

pub use messages::MessageStep;

/// The arguments of the one-message stubs (`stage`, `create`, ...).
pub(crate) fn messages_takes(name: &str) -> &'static [&'static str] {
    messages::takes(name).unwrap_or(&[])
}

pub(crate) use run::build;

use super::args::{takes, Args, DeviceRef, Need, RawCall};
use super::devices::{DeviceKind, DeviceSet};
use super::error::{ConfigError, ErrorKind, Location, Src};
use super::preflight::ArgLocations;
use super::standard::{StandardPlan, STANDARD_PLANS};
use super::{metadata, toml_to_json, Table};

/// The plan stubs a `[[steps]]` entry may name (besides the standard plans).
pub const STUBS: &[&str] = &[
    "null",
    "checkpoint",
    "sleep",
    "wait",
    "open_run",
    "close_run",
    "mv",
    "mvr",
    "abs_set",
    "trigger",
    "trigger_and_read",
    "kickoff",
    "complete",
    "collect",
    "stage",
    "unstage",
    "stop",
    "create",
    "read",
    "save",
    "drop",
    "declare_stream",
    "configure",
    "pause",
    "locate",
    "rd",
];

/// One step of a plan file.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `null`: a message that does nothing.
    Null,
    /// `checkpoint`: where a paused plan resumes.
    Checkpoint,
    /// `sleep`.
    Sleep {
        /// Seconds.
        seconds: f64,
    },
    /// `wait` for a group of statuses.
    Wait {
        /// The group (`None`: the ungrouped statuses).
        group: Option<String>,
        /// Seconds before failing.
        timeout: Option<f64>,
    },
    /// `open_run`.
    OpenRun {
        /// The step's own metadata (over the file's `[metadata]`).
        md: Map<String, Value>,
    },
    /// `close_run`.
    CloseRun {
        /// `success`, `fail` or `abort`.
        exit_status: Option<String>,
        /// Why.
        reason: Option<String>,
    },
    /// `mv` or, with `relative`, `mvr`: move the motors together and wait.
    Move {
        /// Motors and targets (or offsets).
        moves: Vec<(DeviceRef, f64)>,
        /// Offsets from the current positions.
        relative: bool,
        /// As parsed from `positions = [..]`: the numbers to pair with the
        /// motors once their families and globs are expanded (the numbers
        /// in `moves` are unused until then), and where the list is
        /// written. `None` once checked.
        spread: Option<(Vec<f64>, Location)>,
    },
    /// `abs_set`.
    AbsSet {
        /// The device.
        device: DeviceRef,
        /// The value.
        value: Value,
        /// Where the value is written.
        value_at: Location,
        /// The status group.
        group: Option<String>,
        /// Wait for the status.
        wait: bool,
    },
    /// `trigger`.
    Trigger {
        /// The device.
        device: DeviceRef,
        /// The status group.
        group: Option<String>,
        /// Wait for the status.
        wait: bool,
    },
    /// `trigger_and_read`: one event.
    TriggerAndRead {
        /// Devices to trigger (those that can be) and read.
        detectors: Vec<DeviceRef>,
        /// The event stream.
        stream: String,
    },
    /// `kickoff` a flyer.
    Kickoff {
        /// The flyer.
        flyer: DeviceRef,
        /// The status group.
        group: Option<String>,
        /// Wait for the status.
        wait: bool,
    },
    /// `complete` a flyer.
    Complete {
        /// The flyer.
        flyer: DeviceRef,
        /// The status group.
        group: Option<String>,
        /// Wait for the status.
        wait: bool,
    },
    /// `collect` a flyer's events.
    Collect {
        /// The flyer.
        flyer: DeviceRef,
    },
    /// A standard plan, with its own run.
    Plan(StandardPlan),
    /// A step that is one message (stage, create, read, save, configure, ...).
    Message(MessageStep),
}

/// A step and where it is declared.
#[derive(Debug, Clone, PartialEq)]
pub struct StepEntry {
    /// The step.
    pub step: Step,
    /// The `[[steps]]` table.
    pub location: Location,
    /// Where each of its arguments is written.
    pub args: ArgLocations,
}

impl Step {
    /// Every device the step names.
    pub fn devices(&self) -> Vec<&DeviceRef> {
        match self {
            Step::Move { moves, .. } => moves.iter().map(|(d, _)| d).collect(),
            Step::AbsSet { device, .. } | Step::Trigger { device, .. } => vec![device],
            Step::TriggerAndRead { detectors, .. } => detectors.iter().collect(),
            Step::Kickoff { flyer, .. }
            | Step::Complete { flyer, .. }
            | Step::Collect { flyer } => vec![flyer],
            Step::Plan(p) => p.devices(),
            Step::Message(m) => m.devices(),
            _ => Vec::new(),
        }
    }

    /// Whether it opens a run.
    pub fn opens_run(&self) -> bool {
        matches!(self, Step::OpenRun { .. } | Step::Plan(_))
    }

    /// The events it emits.
    pub fn num_points(&self, set: &DeviceSet) -> u64 {
        match self {
            Step::TriggerAndRead { .. } => 1,
            Step::Plan(p) => p.num_points(set),
            Step::Collect { flyer } => match set.get(&flyer.name).map(|d| &d.config) {
                Some(super::DeviceConfig::Flyer(c)) => c.num_points as u64,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// Checks values against the devices they go to (a motor takes numbers only).
    pub(crate) fn check_values(&self, set: &DeviceSet) -> Result<(), ConfigError> {
        if let Step::AbsSet {
            device,
            value,
            value_at,
            ..
        } = self
        {
            if set.kind(&device.name) == Some(DeviceKind::Motor) && !value.is_number() {
                return Err(ConfigError::new(
                    value_at.clone(),
                    ErrorKind::Invalid(format!(
                        "the value for motor '{}' must be a number, got {value}",
                        device.name
                    )),
                ));
            }
        }
        Ok(())
    }
}

/// Parses `[[steps]]` and checks that runs nest.
pub(crate) fn parse(
    src: Src<'_>,
    steps: &Spanned<Vec<Spanned<Table<RawCall>>>>,
) -> Result<Vec<StepEntry>, ConfigError> {
    if steps.get_ref().is_empty() {
        return Err(src.err(
            &steps.span(),
            ErrorKind::Invalid("[[steps]] lists no step".into()),
        ));
    }
    let mut out = Vec::with_capacity(steps.get_ref().len());
    for (i, s) in steps.get_ref().iter().enumerate() {
        let r = s.get_ref();
        if let Some(n) = &r.name {
            return Err(src.err(
                &n.span(),
                ErrorKind::Invalid("a step takes 'stub', not 'name' ('name' is for [plan])".into()),
            ));
        }
        let stub = r.stub.as_ref().ok_or_else(|| {
            src.err(
                &s.span(),
                ErrorKind::MissingArgument {
                    context: format!("step {}", i + 1),
                    argument: "stub",
                },
            )
        })?;
        let name = stub.get_ref().as_str();
        let a = Args {
            raw: r,
            src,
            context: format!("step {} '{name}'", i + 1),
            span: s.span(),
        };
        let step = if STANDARD_PLANS.contains(&name) {
            Step::Plan(StandardPlan::parse(name, &a)?)
        } else {
            parse_stub(name, &a).map_err(|e| match e {
                StubError::Bad(e) => e,
                StubError::Unknown => src.err(
                    &stub.span(),
                    ErrorKind::UnknownName {
                        what: "stub",
                        name: name.to_owned(),
                        known: format!(
                            "{}, or a plan: {}",
                            STUBS.join(", "),
                            STANDARD_PLANS.join(", ")
                        ),
                    },
                ),
            })?
        };
        out.push(StepEntry {
            step,
            location: src.loc(&s.span()),
            args: ArgLocations::of(src, r),
        });
    }
    check_runs(&out)?;
    Ok(out)
}

/// Parses a stub.
fn parse_stub(name: &str, a: &Args<'_>) -> Result<Step, StubError> {
    let r = a.raw;
    let group = a.string(&r.group);
    let wait = r.wait.as_ref().is_none_or(|w| *w.get_ref());
    let step = match name {
        "null" | "checkpoint" => {
            a.only(takes(name))?;
            if name == "null" {
                Step::Null
            } else {
                Step::Checkpoint
            }
        }
        "sleep" => {
            a.only(takes(name))?;
            Step::Sleep {
                seconds: a
                    .opt_nonneg(&r.seconds, "seconds")?
                    .ok_or_else(|| a.missing("seconds"))?,
            }
        }
        "wait" => {
            a.only(takes(name))?;
            Step::Wait {
                group,
                timeout: a.opt_nonneg(&r.timeout, "timeout")?,
            }
        }
        "open_run" => {
            a.only(takes(name))?;
            let md = match &r.md {
                Some(md) => metadata(a.src, md.get_ref(), &format!("md of {}", a.context))?,
                None => Map::new(),
            };
            Step::OpenRun { md }
        }
        "close_run" => {
            a.only(takes(name))?;
            if let Some(e) = &r.exit_status {
                if !["success", "fail", "abort"].contains(&e.get_ref().as_str()) {
                    return Err(StubError::Bad(a.src.err(
                        &e.span(),
                        ErrorKind::Invalid(format!(
                            "unknown exit_status '{}' (known: success, fail, abort)",
                            e.get_ref()
                        )),
                    )));
                }
            }
            Step::CloseRun {
                exit_status: a.string(&r.exit_status),
                reason: a.string(&r.reason),
            }
        }
        "mv" | "mvr" => {
            a.only(takes(name))?;
            let mut spread = None;
            let moves = match (&r.motor, &r.motors) {
                (Some(m), None) => {
                    if let Some(p) = &r.positions {
                        return Err(StubError::Bad(
                            a.src.err(
                                &p.span(),
                                ErrorKind::Invalid(
                                    "with 'motor', give 'position' (one number), not 'positions'"
                                        .into(),
                                ),
                            ),
                        ));
                    }
                    vec![(
                        a.device(m, Need::Movable, "the motor"),
                        a.f64(&r.position, "position")?,
                    )]
                }
                (None, Some(ms)) => {
                    let motors = a.names(ms, Need::Movable, "a motor");
                    match (&r.position, &r.positions) {
                        // One position for every motor (of the families and globs too).
                        (Some(_), None) => {
                            let x = a.f64(&r.position, "position")?;
                            motors.into_iter().map(|m| (m, x)).collect()
                        }
                        (None, Some(ps)) => {
                            let xs = ps
                                .get_ref()
                                .iter()
                                .map(|p| super::finite(a.src, p, &format!("'positions' of {}", a.context)))
                                .collect::<Result<Vec<_>, _>>()?;
                            // Paired with the motors once families and globs are expanded.
                            spread = Some((xs, a.src.loc(&ps.span())));
                            motors.into_iter().map(|m| (m, f64::NAN)).collect()
                        }
                        (Some(p), Some(_)) => {
                            return Err(StubError::Bad(a.src.err(
                                &p.span(),
                                ErrorKind::Invalid(
                                    "give either 'position' (one for every motor) or 'positions' (one per motor), not both".into(),
                                ),
                            )))
                        }
                        (None, None) => return Err(a.missing("positions").into()),
                    }
                }
                (Some(_), Some(ms)) => {
                    return Err(StubError::Bad(a.src.err(
                        &ms.span(),
                        ErrorKind::Invalid("give either 'motor' or 'motors', not both".into()),
                    )))
                }
                (None, None) => return Err(a.missing("motor").into()),
            };
            Step::Move {
                moves,
                relative: name == "mvr",
                spread,
            }
        }
        "abs_set" => {
            a.only(takes(name))?;
            let v = a.req(&r.value, "value")?;
            Step::AbsSet {
                device: a.req_device(&r.device, "device", Need::Movable, "the device")?,
                value: toml_to_json(a.src, v, &format!("'value' of {}", a.context))?,
                value_at: a.src.loc(&v.span()),
                group,
                wait,
            }
        }
        "trigger" => {
            a.only(takes(name))?;
            Step::Trigger {
                device: a.req_device(&r.device, "device", Need::Triggerable, "the device")?,
                group,
                wait,
            }
        }
        "trigger_and_read" => {
            a.only(takes(name))?;
            Step::TriggerAndRead {
                detectors: a.devices(
                    &r.detectors,
                    "detectors",
                    Need::Readable,
                    "a detector",
                    true,
                )?,
                stream: a.string(&r.stream).unwrap_or_else(|| "primary".into()),
            }
        }
        "kickoff" | "complete" => {
            a.only(takes(name))?;
            let flyer = a.req_device(&r.flyer, "flyer", Need::Flyer, "the flyer")?;
            if name == "kickoff" {
                Step::Kickoff { flyer, group, wait }
            } else {
                Step::Complete { flyer, group, wait }
            }
        }
        "collect" => {
            a.only(takes(name))?;
            Step::Collect {
                flyer: a.req_device(&r.flyer, "flyer", Need::Flyer, "the flyer")?,
            }
        }
        other => match MessageStep::parse(other, a) {
            Some(m) => Step::Message(m?),
            None => return Err(StubError::Unknown),
        },
    };
    Ok(step)
}

/// Runs must open before events and close before the next run opens.
fn check_runs(steps: &[StepEntry]) -> Result<(), ConfigError> {
    let mut open: Option<usize> = None;
    for (i, s) in steps.iter().enumerate() {
        let err = |msg: String| {
            Err(ConfigError::new(
                s.location.clone(),
                ErrorKind::Invalid(msg),
            ))
        };
        let n = i + 1;
        match (&s.step, open) {
            (Step::OpenRun { .. }, Some(o)) => return err(format!("step {n} opens a run while the run opened by step {} is still open (add a close_run step before it)", o + 1)),
            (Step::Plan(p), Some(o)) => return err(format!("step {n} ({}) opens its own run while the run opened by step {} is still open (add a close_run step before it)", p.name(), o + 1)),
            (Step::OpenRun { .. }, None) => open = Some(i),
            (Step::CloseRun { .. }, None) => return err(format!("step {n} (close_run) closes no run: no run is open")),
            (Step::CloseRun { .. }, Some(_)) => open = None,
            (Step::Message(m), None) if m.needs_run() => {
                return err(format!("step {n} ({}) needs an open run: add a step with stub = \"open_run\" before it", m.stub()))
            }
            (Step::TriggerAndRead { .. } | Step::Collect { .. }, None) => {
                return err(format!("step {n} ({}) needs an open run: add a step with stub = \"open_run\" before it", if matches!(s.step, Step::Collect { .. }) { "collect" } else { "trigger_and_read" }))
            }
            _ => {}
        }
    }
    if let Some(o) = open {
        return Err(ConfigError::new(
            steps[o].location.clone(),
            ErrorKind::Invalid(format!(
                "the run opened by step {} is never closed: add a step with stub = \"close_run\"",
                o + 1
            )),
        ));
    }
    Ok(())
}

/// Why a stub did not parse: unknown, or bad arguments.
enum StubError {
    Unknown,
    Bad(ConfigError),
}

impl From<ConfigError> for StubError {
    fn from(e: ConfigError) -> Self {
        StubError::Bad(e)
    }
}
