//! The plans the service offers: the standard plans and stubs with the
//! JSON schema of their parameters (device parameters are device names),
//! the plan files of `--plans DIR`, and the check of a task's parameters
//! against the schema, which answers as pydantic does (`missing`,
//! `extra_forbidden`, `int_type`, ...) so blueapi's client prints them.
//!
//! A task's parameters become a plan file (`[plan]` or one `[[steps]]`
//! entry) checked against the device file exactly as `skyrun check` checks
//! one, so the service runs what `skyrun run` would.
//!
//! ```
//! use skyrun::config::DeviceSet;
//! use skyrun::service::Catalog;
//! let set = DeviceSet::parse("[[motor]]\nname = 'm'\n[[detector]]\nname = 'det'\nmotor = 'm'\n", "b.toml").unwrap();
//! let catalog = Catalog::standard();
//! let params = serde_json::json!({"detectors": ["det"], "num": "three"});
//! let errors = catalog.prepare("count", params.as_object().unwrap(), &set).unwrap_err();
//! assert_eq!(serde_json::json!(errors[0].loc), serde_json::json!(["body", "params", "num"]));
//! assert_eq!(errors[0].kind, "int_type");
//! ```

mod kinds;

use std::path::Path;

use serde_json::{json, Map, Value};

use self::kinds::{check_object, error, title};
use super::model::{ArgumentError, PlanModel};
use crate::config::{DeviceKind, DeviceSet, PlanFile};

/// What a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// One device name, of a device that can do `need`.
    Device(Need),
    /// A list of device names.
    Devices(Need),
    /// An integer, at least `min`.
    Int(i64),
    /// A finite number, at least the bound when there is one.
    Number(Option<f64>),
    /// `true` or `false`.
    Bool,
    /// A list of numbers.
    Numbers,
    /// Grid scan axes: `[{motor, start, stop, num}, ...]`.
    Axes,
    /// A string.
    Str,
    /// Any JSON value (a signal's value).
    Any,
}

/// What a device parameter needs of the device.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Readable,
    Movable,
    Flyer,
}

impl Need {
    fn accepts(self, kind: DeviceKind) -> bool {
        match self {
            Need::Readable => kind.readable(),
            Need::Movable => kind.movable(),
            Need::Flyer => kind == DeviceKind::Flyer,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Need::Readable => "a readable device (detector, motor or signal)",
            Need::Movable => "a movable device (motor or signal)",
            Need::Flyer => "a flyer",
        }
    }
}

/// One parameter of a plan.
#[derive(Debug, Clone)]
struct Param {
    name: &'static str,
    kind: Kind,
    /// `None`: required.
    default: Option<Value>,
    doc: &'static str,
}

const fn p(
    name: &'static str,
    kind: Kind,
    doc: &'static str,
) -> (&'static str, Kind, &'static str) {
    (name, kind, doc)
}

/// A parameter as listed: name, kind, doc, default (`None`: required).
type ParamRow = (&'static str, Kind, &'static str, Option<Value>);
/// A plan as listed: name, description, parameters.
type PlanRow = (&'static str, &'static str, Vec<ParamRow>);

/// One plan the service offers.
#[derive(Debug, Clone)]
pub struct CatalogPlan {
    name: String,
    description: String,
    params: Vec<Param>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// A standard plan: `[plan] name = ...` with the parameters.
    Standard,
    /// A stub: one `[[steps]]` entry.
    Stub,
    /// A plan file, run as it is.
    File(Box<PlanFile>),
}

/// The plans the service offers, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    plans: Vec<CatalogPlan>,
}

impl Catalog {
    /// The standard plans and the stubs that make sense alone.
    pub fn standard() -> Self {
        use Kind::*;
        let dets = p(
            "detectors",
            Devices(Need::Readable),
            "Devices to read, by name",
        );
        let motor = p("motor", Device(Need::Movable), "The motor to move, by name");
        let std_plans: Vec<PlanRow> = vec![
            (
                "count",
                "Take one or more readings from detectors (Bluesky's bluesky.plans.count).",
                vec![
                    with(dets, None),
                    with(p("num", Int(1), "Number of readings"), Some(json!(1))),
                    with(p("delay", Number(Some(0.0)), "Seconds between readings"), Some(json!(0.0))),
                ],
            ),
            (
                "scan",
                "Scan over one motor from start to stop in num evenly spaced points, reading the detectors at each (bluesky.plans.scan).",
                scan_params(dets, motor),
            ),
            (
                "rel_scan",
                "As scan, with start and stop relative to the motor's position; the motor returns there at the end (bluesky.plans.rel_scan).",
                scan_params(dets, motor),
            ),
            (
                "list_scan",
                "Move one motor through a list of positions, reading the detectors at each (bluesky.plans.list_scan).",
                vec![
                    with(dets, None),
                    with(motor, None),
                    with(p("positions", Numbers, "The positions, in order"), None),
                ],
            ),
            (
                "grid_scan",
                "Scan a mesh of motors, the first axis slowest (bluesky.plans.grid_scan).",
                vec![
                    with(dets, None),
                    with(p("axes", Axes, "The axes, slowest first: {motor, start, stop, num}"), None),
                    with(p("snake", Bool, "Snake the faster axes"), Some(json!(false))),
                ],
            ),
            (
                "fly",
                "Kick off, complete and collect flyers (bluesky.plans.fly).",
                vec![with(p("flyers", Devices(Need::Flyer), "Flyers, by name"), None)],
            ),
        ];
        let stubs: Vec<PlanRow> = vec![
            (
                "mv",
                "Move a motor to a position and wait for it (bluesky.plan_stubs.mv).",
                vec![with(motor, None), with(p("position", Number(None), "The target"), None)],
            ),
            (
                "mvr",
                "Move a motor by a distance and wait for it (bluesky.plan_stubs.mvr).",
                vec![with(motor, None), with(p("position", Number(None), "The distance"), None)],
            ),
            (
                "abs_set",
                "Set a device to a value and wait for it (bluesky.plan_stubs.abs_set with wait=True).",
                vec![
                    with(p("device", Device(Need::Movable), "The device, by name"), None),
                    with(p("value", Any, "The value"), None),
                    with(p("wait", Bool, "Wait for the set to finish"), Some(json!(true))),
                ],
            ),
            (
                "sleep",
                "Sleep (bluesky.plan_stubs.sleep).",
                vec![with(p("seconds", Number(Some(0.0)), "Seconds"), None)],
            ),
            (
                "trigger_and_read",
                "Open a run, trigger and read the detectors once, close it.",
                vec![
                    with(dets, None),
                    with(p("stream", Str, "The event stream"), Some(json!("primary"))),
                ],
            ),
        ];
        let mut plans = Vec::new();
        for (list, body) in [(std_plans, Body::Standard), (stubs, Body::Stub)] {
            for (name, description, params) in list {
                plans.push(CatalogPlan {
                    name: name.to_owned(),
                    description: description.to_owned(),
                    params: params
                        .into_iter()
                        .map(|(name, kind, doc, default)| Param {
                            name,
                            kind,
                            default,
                            doc,
                        })
                        .collect(),
                    body: body.clone(),
                });
            }
        }
        Catalog { plans }
    }

    /// Adds every plan file (`*.toml` with `[plan]` or `[[steps]]`) of
    /// `dir`, named by its file stem, taking no parameters; each is checked
    /// against `set` now, so a broken file stops the service from starting.
    pub fn add_dir(
        &mut self,
        dir: &Path,
        set: &DeviceSet,
    ) -> Result<usize, crate::config::ConfigError> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| {
                crate::config::ConfigError::new(
                    crate::config::Location::file(dir.display().to_string()),
                    crate::config::ErrorKind::Io(e.to_string()),
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut added = 0;
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Device files in the same folder are not plans.
            if !text.lines().any(|l| {
                let l = l.trim();
                l == "[plan]" || l == "[[steps]]"
            }) {
                continue;
            }
            let file = PlanFile::load(&path)?;
            let summary = file.check(set)?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.plans.retain(|p| p.name != name);
            self.plans.push(CatalogPlan {
                name,
                description: format!("{} ({})", summary.description.join("; "), path.display()),
                params: Vec::new(),
                body: Body::File(Box::new(file)),
            });
            added += 1;
        }
        Ok(added)
    }

    /// Every plan, as `GET /plans` lists them.
    pub fn models(&self) -> Vec<PlanModel> {
        self.plans.iter().map(CatalogPlan::model).collect()
    }

    /// One plan.
    pub fn get(&self, name: &str) -> Option<&CatalogPlan> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// Checks `params` against plan `name`'s schema and the device file and
    /// makes the plan file that runs it. `Err` lists every problem found
    /// (an unknown plan is the caller's 404: check [`get`](Self::get) first).
    pub fn prepare(
        &self,
        name: &str,
        params: &Map<String, Value>,
        set: &DeviceSet,
    ) -> Result<PlanFile, Vec<ArgumentError>> {
        let Some(plan) = self.get(name) else {
            return Err(vec![error(
                &[],
                "value_error",
                format!("unknown plan '{name}'"),
                Value::Null,
            )]);
        };
        plan.prepare(params, set)
    }
}

fn with((name, kind, doc): (&'static str, Kind, &'static str), default: Option<Value>) -> ParamRow {
    (name, kind, doc, default)
}

fn scan_params(
    dets: (&'static str, Kind, &'static str),
    motor: (&'static str, Kind, &'static str),
) -> Vec<ParamRow> {
    vec![
        with(dets, None),
        with(motor, None),
        with(p("start", Kind::Number(None), "First position"), None),
        with(p("stop", Kind::Number(None), "Last position"), None),
        with(p("num", Kind::Int(1), "Number of points"), None),
    ]
}

impl CatalogPlan {
    /// The plan's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON schema of its parameters, as pydantic writes a model's.
    pub fn schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for p in &self.params {
            let mut s = p.kind.schema();
            let o = s.as_object_mut().expect("schemas are objects");
            o.insert("title".into(), json!(title(p.name)));
            o.insert("description".into(), json!(p.doc));
            match &p.default {
                Some(d) => {
                    o.insert("default".into(), d.clone());
                }
                None => required.push(json!(p.name)),
            }
            properties.insert(p.name.into(), s);
        }
        let mut schema = json!({
            "additionalProperties": false,
            "properties": properties,
            "title": self.name,
            "type": "object",
        });
        if !required.is_empty() {
            schema["required"] = Value::Array(required);
        }
        schema
    }

    fn model(&self) -> PlanModel {
        PlanModel {
            name: self.name.clone(),
            description: Some(self.description.clone()),
            schema: self.schema(),
        }
    }

    fn prepare(
        &self,
        params: &Map<String, Value>,
        set: &DeviceSet,
    ) -> Result<PlanFile, Vec<ArgumentError>> {
        let fields: Vec<_> = self
            .params
            .iter()
            .map(|p| (p.name, p.kind, p.default.is_some()))
            .collect();
        let mut errors = Vec::new();
        check_object(params, &fields, &[], set, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let head = match &self.body {
            Body::File(file) => return Ok((**file).clone()),
            Body::Standard => "name",
            Body::Stub => "stub",
        };
        let mut call = toml::Table::new();
        call.insert(head.into(), toml::Value::String(self.name.clone()));
        for (k, v) in params {
            match toml::Value::try_from(v) {
                Ok(t) => {
                    call.insert(k.clone(), t);
                }
                // JSON null has no TOML form: leave the parameter out.
                Err(_) if v.is_null() => {}
                Err(e) => {
                    return Err(vec![error(
                        &[json!(k)],
                        "value_error",
                        format!("Value error, {e}"),
                        v.clone(),
                    )])
                }
            }
        }
        let mut doc = toml::Table::new();
        match self.body {
            Body::Stub => {
                doc.insert(
                    "steps".into(),
                    toml::Value::Array(vec![toml::Value::Table(call)]),
                );
            }
            _ => {
                doc.insert("plan".into(), toml::Value::Table(call));
            }
        }
        let text = toml::to_string(&doc)
            .map_err(|e| vec![error(&[], "value_error", e.to_string(), Value::Null)])?;
        let file = PlanFile::parse(&text, &self.name).map_err(|e| {
            vec![error(
                &[],
                "value_error",
                format!("Value error, {}", e.kind()),
                json!(params),
            )]
        })?;
        file.check(set).map_err(|e| {
            vec![error(
                &[],
                "value_error",
                format!("Value error, {}", e.kind()),
                json!(params),
            )]
        })?;
        Ok(file)
    }
}
