//! The plan file: one standard plan with its arguments, or a list of plan
//! stubs run in order, plus run metadata.
//!
//! A standard plan:
//!
//! ```toml
//! devices = "beamline.toml"    # optional: the device file, relative to this file
//!
//! [plan]
//! name = "scan"                # count | scan | rel_scan | list_scan | grid_scan | fly
//! detectors = ["det", "det2"]
//! motor = "motor"
//! start = -2.0
//! stop = 2.0
//! num = 21
//!
//! [metadata]                   # added to the start document
//! sample = "silicon"
//! operator = "ada"
//! ```
//!
//! The arguments of each plan (all device arguments are names from the device file):
//!
//! | plan | arguments |
//! |---|---|
//! | `count` | `detectors`, `num` (default 1), `delay` (s, default 0) |
//! | `scan`, `rel_scan` | `detectors`, `motor`, `start`, `stop`, `num` |
//! | `list_scan` | `detectors`, `motor`, `positions = [..]` |
//! | `grid_scan` | `detectors`, `axes = [{ motor, start, stop, num }, ..]` (first is slowest), `snake` (default false) |
//! | `fly` | `flyers` |
//!
//! Or plan stubs, run in order (see [`Step`](super::Step) for each stub's arguments):
//!
//! ```toml
//! [[steps]]
//! stub = "mv"
//! motor = "motor"
//! position = 1.0
//!
//! [[steps]]
//! stub = "open_run"
//! md = { purpose = "alignment" }
//!
//! [[steps]]
//! stub = "trigger_and_read"
//! detectors = ["det"]
//!
//! [[steps]]
//! stub = "close_run"
//!
//! [[steps]]
//! stub = "count"               # a standard plan as a step (opens its own run)
//! detectors = ["det"]
//! num = 3
//! ```
//!
//! `[metadata]` goes to every run's start document: through the plan's
//! metadata argument where it has one (so it may override the plan's own
//! keys), and as run metadata of the engine otherwise ([`BuiltPlan::run_metadata`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::args::{Args, DeviceRef, Need, RawCall};
use super::devices::{DeviceKind, DeviceSet, Devices};
use super::error::{from_toml, ConfigError, ErrorKind, Location, Src};
use super::families;
use super::preflight::ArgLocations;
use super::standard::{StandardPlan, STANDARD_PLANS};
use super::steps::{self, StepEntry};
use super::{metadata, read_file, RawMd, Table, MAX_POINTS};
use crate::plan::Plan;

// ---------------------------------------------------------------------------
// Raw TOML shapes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanFile {
    devices: Option<Spanned<String>>,
    plan: Option<Spanned<Table<RawCall>>>,
    steps: Option<Spanned<Vec<Spanned<Table<RawCall>>>>>,
    metadata: Option<RawMd>,
}

/// `[plan]` or a `[[steps]]` entry, read only for its name, to say which
/// keys it takes when it has one it does not.
#[derive(Debug, Deserialize)]
struct LooseCall {
    name: Option<String>,
    stub: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LooseFile {
    plan: Option<Spanned<LooseCall>>,
    steps: Option<Vec<Spanned<LooseCall>>>,
}

/// The error of `e`; an unknown key in `[plan]` or a step lists the keys
/// of that plan or stub, not every key any of them takes.
fn unknown_key_of_call(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let err = from_toml(file, text, e);
    let (Some(span), Some(rest)) = (e.span(), e.message().strip_prefix("unknown field `")) else {
        return err;
    };
    // Only the errors of a call's table (its keys include `stub`).
    if !rest.contains("`stub`") {
        return err;
    }
    let Some(key) = rest.split('`').next() else {
        return err;
    };
    let Ok(loose) = toml::from_str::<LooseFile>(text) else {
        return err;
    };
    // The table the key is in: the last header before it (a table's span
    // is its header).
    let steps = loose.steps.unwrap_or_default();
    let mut best: Option<(usize, Option<usize>)> = None;
    if let Some(p) = &loose.plan {
        if p.span().start <= span.start {
            best = Some((p.span().start, None));
        }
    }
    for (i, st) in steps.iter().enumerate() {
        if st.span().start <= span.start && best.is_none_or(|(b, _)| st.span().start >= b) {
            best = Some((st.span().start, Some(i)));
        }
    }
    let (context, head, name) = match best {
        Some((_, None)) => match loose.plan.as_ref().and_then(|p| p.get_ref().name.clone()) {
            Some(n) => (format!("plan '{n}'"), "name", n),
            None => return err,
        },
        Some((_, Some(i))) => match &steps[i].get_ref().stub {
            Some(n) => (format!("step {} '{n}'", i + 1), "stub", n.clone()),
            None => return err,
        },
        None => return err,
    };
    let takes = super::args::takes(&name);
    if takes.is_empty()
        && !STANDARD_PLANS.contains(&name.as_str())
        && !super::steps::STUBS.contains(&name.as_str())
    {
        return err;
    }
    let keys: Vec<&str> = std::iter::once(head).chain(takes.iter().copied()).collect();
    let mut msg = format!("unknown key '{key}'");
    let hint = super::error::known_list(key, keys.iter().copied());
    if let Some(rest) = hint.strip_prefix("did you mean") {
        let (suggestion, _) = rest.split_once('?').unwrap_or((rest, ""));
        msg.push_str(&format!(" (did you mean{suggestion}?)"));
    }
    msg.push_str(&format!("; {context} takes: {}", keys.join(", ")));
    ConfigError::new(err.location().clone(), ErrorKind::Toml(msg))
}

// ---------------------------------------------------------------------------
// The plan file

/// What a plan file runs.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanBody {
    /// One standard plan (`[plan]`).
    Standard(StandardPlan),
    /// Plan stubs in order (`[[steps]]`).
    Steps(Vec<StepEntry>),
}

/// A parsed plan file: structurally valid; device names are checked against
/// a device file by [`check`](Self::check).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFile {
    file: String,
    dir: Option<PathBuf>,
    name: String,
    devices: Option<(String, Location)>,
    body: PlanBody,
    metadata: Map<String, Value>,
    plan_args: ArgLocations,
}

/// What a checked plan would do (for `skyrun check`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSummary {
    /// The plan's name (`scan`, or the file stem for a list of steps).
    pub plan: String,
    /// A one-line description of the standard plan, or one per step.
    pub description: Vec<String>,
    /// Devices read, in order of appearance.
    pub detectors: Vec<String>,
    /// Devices moved.
    pub motors: Vec<String>,
    /// Signals read or set.
    pub signals: Vec<String>,
    /// Flyers.
    pub flyers: Vec<String>,
    /// Events the plan is expected to emit.
    pub num_points: u64,
    /// Runs the plan opens.
    pub runs: usize,
}

/// A plan ready to run, and the metadata to give the engine.
#[derive(Debug)]
pub struct BuiltPlan {
    /// The plan.
    pub plan: Plan,
    /// The file's `[metadata]`: give it to the engine
    /// ([`RunEngineBuilder::metadata`](crate::RunEngineBuilder::metadata)) so
    /// runs of plans without a metadata argument carry it too.
    pub run_metadata: Map<String, Value>,
}

impl PlanFile {
    /// Reads and parses the plan file at `path`; its `devices` key is relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (file, text) = read_file(path)?;
        let mut pf = Self::parse(&text, &file)?;
        pf.dir = Some(path.parent().map(Path::to_path_buf).unwrap_or_default());
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            if matches!(pf.body, PlanBody::Steps(_)) {
                pf.name = stem.to_owned();
            }
        }
        Ok(pf)
    }

    /// Parses the text of a plan file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let raw: RawPlanFile =
            toml::from_str(text).map_err(|e| unknown_key_of_call(file, text, &e))?;
        let src = Src { file, text };
        let metadata = match &raw.metadata {
            Some(md) => metadata(src, md, "metadata")?,
            None => Map::new(),
        };
        let mut plan_args = ArgLocations::default();
        let (name, body) = match (&raw.plan, &raw.steps) {
            (Some(_), Some(s)) => {
                return Err(src.err(
                    &s.span(),
                    ErrorKind::Invalid("give either [plan] or [[steps]], not both".into()),
                ))
            }
            (None, None) => {
                return Err(ConfigError::new(
                    Location::file(file),
                    ErrorKind::Invalid(
                        "the plan file has neither a [plan] table nor [[steps]]".into(),
                    ),
                ))
            }
            (Some(p), None) => {
                let r = p.get_ref();
                if let Some(s) = &r.stub {
                    return Err(src.err(
                        &s.span(),
                        ErrorKind::Invalid(
                            "[plan] takes 'name', not 'stub' (stubs go in [[steps]])".into(),
                        ),
                    ));
                }
                let name = r.name.as_ref().ok_or_else(|| {
                    src.err(
                        &p.span(),
                        ErrorKind::MissingArgument {
                            context: "[plan]".into(),
                            argument: "name",
                        },
                    )
                })?;
                let n = name.get_ref().as_str();
                if !STANDARD_PLANS.contains(&n) {
                    return Err(src.err(
                        &name.span(),
                        ErrorKind::UnknownName {
                            what: "plan",
                            name: n.to_owned(),
                            known: STANDARD_PLANS.join(", "),
                        },
                    ));
                }
                let args = Args {
                    raw: r,
                    src,
                    context: format!("plan '{n}'"),
                    span: p.span(),
                };
                plan_args = ArgLocations::of(src, r);
                (
                    n.to_owned(),
                    PlanBody::Standard(StandardPlan::parse(n, &args)?),
                )
            }
            (None, Some(s)) => ("steps".to_owned(), PlanBody::Steps(steps::parse(src, s)?)),
        };
        Ok(PlanFile {
            file: file.to_owned(),
            dir: None,
            name,
            devices: raw
                .devices
                .as_ref()
                .map(|d| (d.get_ref().clone(), src.loc(&d.span()))),
            body,
            metadata,
            plan_args,
        })
    }

    /// Where the arguments of `[plan]` are written (empty for `[[steps]]`).
    pub fn plan_args(&self) -> &ArgLocations {
        &self.plan_args
    }

    /// The file, as named.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What it runs.
    pub fn body(&self) -> &PlanBody {
        &self.body
    }

    /// Its `[metadata]`.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// Adds `key = value` to its `[metadata]` (replacing a value the file
    /// gives), as a launcher does with what it knows of the run.
    ///
    /// ```
    /// let mut f = skyrun::config::PlanFile::parse("[plan]\nname = 'count'\ndetectors = ['det']\n", "p.toml").unwrap();
    /// f.add_metadata("instrument_session", "cm12345-1".into());
    /// assert_eq!(f.metadata()["instrument_session"], "cm12345-1");
    /// ```
    pub fn add_metadata(&mut self, key: impl Into<String>, value: Value) {
        self.metadata.insert(key.into(), value);
    }

    /// The device file its `devices` key names, relative to the plan file's
    /// directory (when loaded with [`load`](Self::load)).
    pub fn devices_file(&self) -> Option<PathBuf> {
        let (name, _) = self.devices.as_ref()?;
        Some(match &self.dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        })
    }

    /// Where the plan file's `devices` key is, if it has one.
    pub fn devices_location(&self) -> Option<&Location> {
        self.devices.as_ref().map(|(_, loc)| loc)
    }

    /// The plan with the families and globs of its device lists replaced by
    /// the devices of `set` they name (see [`super::families`]).
    pub fn expanded(&self, set: &DeviceSet) -> Result<PlanFile, ConfigError> {
        let body = match &self.body {
            PlanBody::Standard(p) => PlanBody::Standard(families::expand_plan(p, set)?),
            PlanBody::Steps(steps) => PlanBody::Steps(
                steps
                    .iter()
                    .map(|s| {
                        Ok(StepEntry {
                            step: families::expand_step(&s.step, set)?,
                            ..s.clone()
                        })
                    })
                    .collect::<Result<_, ConfigError>>()?,
            ),
        };
        Ok(PlanFile {
            body,
            ..self.clone()
        })
    }

    /// Checks every device name against `set` (families and globs
    /// expanded) and describes what would run.
    pub fn check(&self, set: &DeviceSet) -> Result<PlanSummary, ConfigError> {
        self.expanded(set)?.check_expanded(set)
    }

    fn check_expanded(&self, set: &DeviceSet) -> Result<PlanSummary, ConfigError> {
        let mut s = PlanSummary {
            plan: self.name.clone(),
            description: Vec::new(),
            detectors: Vec::new(),
            motors: Vec::new(),
            signals: Vec::new(),
            flyers: Vec::new(),
            num_points: 0,
            runs: 0,
        };
        let mut note = |d: &DeviceRef, set: &DeviceSet| -> Result<(), ConfigError> {
            let kind = d.check(set)?;
            let list = match (kind, d.need) {
                (DeviceKind::Signal, _) => &mut s.signals,
                (_, Need::Readable | Need::Triggerable | Need::PlanDetector) => &mut s.detectors,
                (_, Need::Movable | Need::PlanMotor) => &mut s.motors,
                (_, Need::Flyer) => &mut s.flyers,
            };
            if !list.contains(&d.name) {
                list.push(d.name.clone());
            }
            Ok(())
        };
        let (description, points, runs) = match &self.body {
            PlanBody::Standard(p) => {
                for d in p.devices() {
                    note(d, set)?;
                }
                let points = p.num_points(set);
                // Only `fly` can get here: each flyer is within the limit,
                // not always their sum.
                if let (true, Some(first)) = (points > MAX_POINTS, p.devices().first()) {
                    return Err(ConfigError::new(
                        first.location.clone(),
                        ErrorKind::TooLarge {
                            what: format!("the number of points of plan '{}'", p.name()),
                            value: points.into(),
                            max: MAX_POINTS,
                        },
                    ));
                }
                (vec![p.to_string()], points, 1)
            }
            PlanBody::Steps(steps) => {
                let mut points: u64 = 0;
                for (i, st) in steps.iter().enumerate() {
                    for d in st.step.devices() {
                        note(d, set)?;
                    }
                    st.step.check_values(set)?;
                    points = points.saturating_add(st.step.num_points(set));
                    if points > MAX_POINTS {
                        return Err(ConfigError::new(
                            st.location.clone(),
                            ErrorKind::TooLarge {
                                what: format!("the number of points up to step {}", i + 1),
                                value: points.into(),
                                max: MAX_POINTS,
                            },
                        ));
                    }
                }
                let runs = steps.iter().filter(|s| s.step.opens_run()).count();
                (
                    steps
                        .iter()
                        .enumerate()
                        .map(|(i, s)| format!("{:>3}. {}", i + 1, s.step))
                        .collect(),
                    points,
                    runs,
                )
            }
        };
        s.description = description;
        s.num_points = points;
        s.runs = runs;
        Ok(s)
    }

    /// Checks the file against `set` and builds the plan on the `devices`
    /// spawned from it.
    pub fn build(&self, set: &DeviceSet, devices: &Devices) -> Result<BuiltPlan, ConfigError> {
        let me = self.expanded(set)?;
        me.check_expanded(set)?;
        let plan = match &me.body {
            PlanBody::Standard(p) => p.build(devices, &self.metadata)?,
            PlanBody::Steps(s) => steps::build(&self.name, s, devices, &self.metadata)?,
        };
        Ok(BuiltPlan {
            plan,
            run_metadata: self.metadata.clone(),
        })
    }
}
