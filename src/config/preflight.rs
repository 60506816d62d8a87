//! What can be known about a plan before it runs: the plans that are sure
//! to fail at once, or to do nothing, found from the plan and device files
//! alone, each said with the file, line and column of the value at fault.
//!
//! * a position past a motor's soft limits (`scan` start/stop, `rel_scan`
//!   from the motor's position, `list_scan` positions, grid axes, `mv`,
//!   `mvr`, `abs_set` of a number), following the motors' positions from
//!   step to step;
//! * a plan with no points (`num = 0`, `positions = []`, a grid axis of 0);
//! * a flyer that acquires no points (`num_points = 0`).
//!
//! ```
//! use skyrun::config::{DeviceSet, PlanFile};
//! let devices = DeviceSet::parse("[[motor]]\nname = 'motor'\nlimits = [-10, 10]\n[[detector]]\nname = 'det'\nmotor = 'motor'\n", "beamline.toml").unwrap();
//! let plan = PlanFile::parse("[plan]\nname = 'scan'\ndetectors = ['det']\nmotor = 'motor'\nstart = 0\nstop = 50\nnum = 5\n", "scan.toml").unwrap();
//! plan.check(&devices).unwrap();   // valid ...
//! let problems = plan.problems(&devices);   // ... but doomed
//! assert_eq!(problems[0].to_string(), "scan.toml:6:8: stop = 50 is outside the limits [-10, 10] of motor 'motor' (beamline.toml:1): plan 'scan' would fail when it moves there");
//! ```

use std::collections::HashMap;

use toml::Spanned;

use super::args::{DeviceRef, RawCall};
use super::devices::{DeviceConfig, DeviceSet};
use super::error::{ConfigError, ErrorKind, Location, Src};
use super::plan::{PlanBody, PlanFile};
use super::standard::StandardPlan;
use super::steps::Step;

/// Where each argument of a plan or step is written: `start`, `positions`,
/// `positions[2]`, `axes[0].num`, ...
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArgLocations(Vec<(String, Location)>);

impl ArgLocations {
    /// The locations of the arguments of `raw`.
    pub(crate) fn of(src: Src<'_>, raw: &RawCall) -> ArgLocations {
        let mut v = Vec::new();
        let mut put = |k: String, span: std::ops::Range<usize>| v.push((k, src.loc(&span)));
        fn sp<T>(x: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
            x.as_ref().map(Spanned::span)
        }
        for (k, s) in [
            ("start", sp(&raw.start)),
            ("stop", sp(&raw.stop)),
            ("position", sp(&raw.position)),
        ] {
            if let Some(s) = s {
                put(k.into(), s);
            }
        }
        if let Some(n) = &raw.num {
            put("num".into(), n.span());
        }
        if let Some(v) = &raw.value {
            put("value".into(), v.span());
        }
        if let Some(ps) = &raw.positions {
            put("positions".into(), ps.span());
            for (i, p) in ps.get_ref().iter().enumerate() {
                put(format!("positions[{i}]"), p.span());
            }
        }
        if let Some(axes) = &raw.axes {
            for (i, a) in axes.get_ref().iter().enumerate() {
                put(format!("axes[{i}]"), a.span());
                let a = a.get_ref();
                for (k, s) in [("start", sp(&a.start)), ("stop", sp(&a.stop))] {
                    if let Some(s) = s {
                        put(format!("axes[{i}].{k}"), s);
                    }
                }
                if let Some(n) = &a.num {
                    put(format!("axes[{i}].num"), n.span());
                }
            }
        }
        ArgLocations(v)
    }

    /// Where `arg` is written.
    pub fn get(&self, arg: &str) -> Option<&Location> {
        self.0.iter().find(|(k, _)| k == arg).map(|(_, l)| l)
    }
}

/// The motors' positions as the plan moves them (`None`: not known).
struct Positions<'a> {
    set: &'a DeviceSet,
    known: HashMap<String, Option<f64>>,
}

impl Positions<'_> {
    fn get(&mut self, name: &str) -> Option<f64> {
        let set = self.set;
        *self.known.entry(name.to_owned()).or_insert_with(|| {
            match set.get(name).map(|d| &d.config) {
                Some(DeviceConfig::Motor(m)) => Some(m.position),
                _ => None,
            }
        })
    }

    fn set(&mut self, name: &str, x: Option<f64>) {
        self.known.insert(name.to_owned(), x);
    }
}

/// Finds the problems of one plan or step.
struct Finder<'a> {
    set: &'a DeviceSet,
    /// Where, what, and the device it is about.
    found: Vec<(Location, String, Option<String>)>,
}

impl Finder<'_> {
    fn at(&mut self, loc: &Location, msg: String) {
        self.found.push((loc.clone(), msg, None));
    }

    fn about(&mut self, loc: &Location, msg: String, device: &str) {
        self.found.push((loc.clone(), msg, Some(device.to_owned())));
    }

    /// The problems, with those of many devices at one place (a family
    /// moved past its limits) said once, naming the others.
    fn problems(self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.found.len() {
            let (loc, msg, dev) = &self.found[i];
            let mut j = i + 1;
            while dev.is_some()
                && j < self.found.len()
                && self.found[j].0 == *loc
                && self.found[j].2.is_some()
            {
                j += 1;
            }
            let mut msg = msg.clone();
            if j - i > 2 {
                let others: Vec<String> = self.found[i + 1..j]
                    .iter()
                    .filter_map(|(_, _, d)| d.clone())
                    .collect();
                msg.push_str(&format!(
                    " (and so would {} more: {})",
                    others.len(),
                    super::families::summarize(&others, self.set).join(", ")
                ));
                out.push(ConfigError::new(loc.clone(), ErrorKind::Invalid(msg)));
            } else {
                for (loc, msg, _) in &self.found[i..j] {
                    out.push(ConfigError::new(
                        loc.clone(),
                        ErrorKind::Invalid(msg.clone()),
                    ));
                }
            }
            i = j;
        }
        out
    }

    /// A problem when `target` is past the limits of `motor`.
    fn limits(&mut self, motor: &DeviceRef, target: f64, what: &str, loc: &Location, doing: &str) {
        let Some(d) = self.set.get(&motor.name) else {
            return;
        };
        let DeviceConfig::Motor(m) = &d.config else {
            return;
        };
        if let Some((lo, hi)) = m.limits {
            if target < lo || target > hi {
                self.about(
                    loc,
                    format!(
                        "{what} is outside the limits [{lo}, {hi}] of motor '{}' ({}:{}): {doing} would fail when it moves there",
                        motor.name,
                        self.set.file(),
                        d.line
                    ),
                    &motor.name,
                );
            }
        }
    }

    fn empty_flyer(&mut self, flyer: &DeviceRef, doing: &str) {
        if let Some(d) = self.set.get(&flyer.name) {
            if let DeviceConfig::Flyer(f) = &d.config {
                if f.num_points == 0 {
                    self.at(
                        &flyer.location,
                        format!(
                            "flyer '{}' acquires no points (num_points = 0 at {}:{}): {doing} would emit no events from it",
                            flyer.name,
                            self.set.file(),
                            d.line
                        ),
                    );
                }
            }
        }
    }

    fn plan(
        &mut self,
        p: &StandardPlan,
        args: &ArgLocations,
        whole: &Location,
        pos: &mut Positions<'_>,
    ) {
        let doing = format!("plan '{}'", p.name());
        let loc = |k: &str| args.get(k).unwrap_or(whole).clone();
        match p {
            StandardPlan::Count { num: 0, .. } => self.at(
                &loc("num"),
                format!("num = 0: {doing} would fail at once (it needs at least 1 reading)"),
            ),
            StandardPlan::Count { .. } => {}
            StandardPlan::Scan {
                motor,
                start,
                stop,
                num,
                relative,
                ..
            } => {
                if *num == 0 {
                    self.at(
                        &loc("num"),
                        format!("num = 0: {doing} would fail at once, with no points to visit"),
                    );
                }
                let here = if *relative {
                    pos.get(&motor.name)
                } else {
                    Some(0.0)
                };
                if let Some(base) = here {
                    for (k, x) in [("start", *start), ("stop", *stop)] {
                        let target = if *relative { base + x } else { x };
                        let what = if *relative {
                            format!("{k} = {x} (position {target}, from the motor's {base})")
                        } else {
                            format!("{k} = {x}")
                        };
                        if *num > 0 {
                            self.limits(motor, target, &what, &loc(k), &doing);
                        }
                    }
                }
                if !*relative {
                    pos.set(&motor.name, Some(*stop));
                }
            }
            StandardPlan::ListScan {
                motor, positions, ..
            } => {
                if positions.is_empty() {
                    self.at(
                        &loc("positions"),
                        format!(
                            "positions = []: {doing} would fail at once, with no points to visit"
                        ),
                    );
                }
                for (i, x) in positions.iter().enumerate() {
                    let what = format!("position {x}");
                    self.limits(motor, *x, &what, &loc(&format!("positions[{i}]")), &doing);
                }
                if let Some(last) = positions.last() {
                    pos.set(&motor.name, Some(*last));
                }
            }
            StandardPlan::GridScan { axes, .. } => {
                for (i, a) in axes.iter().enumerate() {
                    if a.num == 0 {
                        self.at(
                            &loc(&format!("axes[{i}].num")),
                            format!("num = 0 on axis {}: {doing} would fail at once, with no points to visit", i + 1),
                        );
                    }
                    for (k, x) in [("start", a.start), ("stop", a.stop)] {
                        let at = args
                            .get(&format!("axes[{i}].{k}"))
                            .or_else(|| args.get(&format!("axes[{i}]")))
                            .unwrap_or(whole)
                            .clone();
                        self.limits(&a.motor, x, &format!("{k} = {x}"), &at, &doing);
                    }
                    // Snaked or not, where the motor ends is not worth following.
                    pos.set(&a.motor.name, None);
                }
            }
            StandardPlan::Fly { flyers } => {
                for f in flyers {
                    self.empty_flyer(f, &doing);
                }
            }
        }
    }

    fn step(
        &mut self,
        n: usize,
        s: &Step,
        args: &ArgLocations,
        whole: &Location,
        pos: &mut Positions<'_>,
    ) {
        let doing = format!("step {n}");
        match s {
            Step::Move {
                moves, relative, ..
            } => {
                let by_list = args.get("positions").is_some();
                for (i, (m, x)) in moves.iter().enumerate() {
                    let key = if by_list {
                        format!("positions[{i}]")
                    } else {
                        "position".into()
                    };
                    let at = args.get(&key).unwrap_or(whole).clone();
                    let target = if *relative {
                        pos.get(&m.name).map(|p| p + x)
                    } else {
                        Some(*x)
                    };
                    if let Some(t) = target {
                        let what = if *relative {
                            format!("moving '{}' by {x} (to {t})", m.name)
                        } else {
                            format!("position {x} for '{}'", m.name)
                        };
                        self.limits(m, t, &what, &at, &doing);
                    }
                    pos.set(&m.name, target);
                }
            }
            Step::AbsSet {
                device,
                value,
                value_at,
                ..
            } => {
                if let Some(x) = value.as_f64() {
                    self.limits(device, x, &format!("value = {x}"), value_at, &doing);
                    pos.set(&device.name, Some(x));
                }
            }
            Step::Kickoff { flyer, .. } | Step::Collect { flyer } => {
                if matches!(s, Step::Kickoff { .. }) {
                    self.empty_flyer(flyer, &doing);
                }
            }
            Step::Plan(p) => self.plan(p, args, whole, pos),
            _ => {}
        }
    }
}

impl PlanFile {
    /// The problems that would make the plan fail at once (or do nothing)
    /// on `set`, found without running it (see the [module docs](self)).
    /// Empty when none is known; a plan that does not pass
    /// [`check`](Self::check) has that error as its one problem.
    pub fn problems(&self, set: &DeviceSet) -> Vec<ConfigError> {
        let expanded = match self.expanded(set).and_then(|e| e.check(set).map(|_| e)) {
            Ok(e) => e,
            Err(e) => return vec![e],
        };
        let mut f = Finder {
            set,
            found: Vec::new(),
        };
        let mut pos = Positions {
            set,
            known: HashMap::new(),
        };
        match expanded.body() {
            PlanBody::Standard(p) => {
                let whole = Location::file(self.file());
                f.plan(p, expanded.plan_args(), &whole, &mut pos);
            }
            PlanBody::Steps(steps) => {
                for (i, s) in steps.iter().enumerate() {
                    f.step(i + 1, &s.step, &s.args, &s.location, &mut pos);
                }
            }
        }
        f.problems()
    }
}
