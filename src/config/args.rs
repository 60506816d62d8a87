//! The arguments of a plan or step as written (`[plan]`, `[[steps]]`), the
//! readers that check them, and references to devices by name.

use std::ops::Range;

use serde::Deserialize;
use skyrun_actors::DeviceHandle;
use toml::Spanned;

use super::devices::{DeviceKind, DeviceSet, Devices};
use super::error::{ConfigError, ErrorKind, Location, Src};
use super::{count, finite, non_negative, RawMd, Table, MAX_POINTS};

type Names = Spanned<NameList>;

/// Device names as written where a list of devices goes: one string
/// (`motors = "m*"`) or a list of them (`detectors = ["det", "d1*"]`). Each
/// may be a device, a family or a glob (see [`families`](super::families)).
#[derive(Debug, Default)]
pub(crate) struct NameList {
    /// The names, with their spans (`None`: the single string, whose span is the value's).
    pub items: Vec<(String, Option<Range<usize>>)>,
}

impl NameList {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<'de> Deserialize<'de> for NameList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;

        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NameList;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a device name, family or glob, or an array of them")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NameList, E> {
                Ok(NameList {
                    items: vec![(v.to_owned(), None)],
                })
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<NameList, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = seq.next_element::<Spanned<String>>()? {
                    let span = n.span();
                    items.push((n.into_inner(), Some(span)));
                }
                Ok(NameList { items })
            }
        }

        d.deserialize_any(V)
    }
}

/// The arguments of `[plan]` or of one `[[steps]]` entry (a superset; each
/// plan and stub says which it takes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCall {
    pub name: Option<Spanned<String>>,
    pub stub: Option<Spanned<String>>,
    pub detectors: Option<Names>,
    pub motor: Option<Spanned<String>>,
    pub motors: Option<Names>,
    pub device: Option<Spanned<String>>,
    pub flyer: Option<Spanned<String>>,
    pub flyers: Option<Names>,
    pub start: Option<Spanned<f64>>,
    pub stop: Option<Spanned<f64>>,
    pub num: Option<Spanned<i64>>,
    pub delay: Option<Spanned<f64>>,
    pub position: Option<Spanned<f64>>,
    pub positions: Option<Spanned<Vec<Spanned<f64>>>>,
    pub axes: Option<Spanned<Vec<Spanned<Table<RawAxis>>>>>,
    pub snake: Option<Spanned<bool>>,
    pub value: Option<Spanned<toml::Value>>,
    pub group: Option<Spanned<String>>,
    pub wait: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<f64>>,
    pub seconds: Option<Spanned<f64>>,
    pub stream: Option<Spanned<String>>,
    pub md: Option<Spanned<RawMd>>,
    pub exit_status: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
    pub devices: Option<Names>,
    pub settings: Option<Spanned<RawMd>>,
    pub defer: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAxis {
    pub motor: Option<Spanned<String>>,
    pub start: Option<Spanned<f64>>,
    pub stop: Option<Spanned<f64>>,
    pub num: Option<Spanned<i64>>,
}

macro_rules! present {
    ($raw:expr, $($f:ident),*) => {{
        let mut v: Vec<(&'static str, Range<usize>)> = Vec::new();
        $( if let Some(x) = &$raw.$f { v.push((stringify!($f), x.span())); } )*
        v
    }};
}

impl RawCall {
    /// The arguments given, with their spans (not `name`/`stub`).
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        present!(
            self,
            detectors,
            motor,
            motors,
            device,
            flyer,
            flyers,
            start,
            stop,
            num,
            delay,
            position,
            positions,
            axes,
            snake,
            value,
            group,
            wait,
            timeout,
            seconds,
            stream,
            md,
            exit_status,
            reason,
            devices,
            settings,
            defer
        )
    }
}

/// The arguments a standard plan or stub takes (besides `name`/`stub`);
/// nothing for a name that is neither.
///
/// ```
/// # // A crate-private table, shown through the error it makes:
/// let e = skyrun::config::PlanFile::parse("[[steps]]\nstub = 'mv'\nmotor = 'm0'\npositon = 1\n", "p.toml").unwrap_err();
/// assert_eq!(e.to_string(), "p.toml:4:1: unknown key 'positon' (did you mean 'position'?); step 1 'mv' takes: stub, motor, position, motors, positions");
/// ```
pub(crate) fn takes(name: &str) -> &'static [&'static str] {
    match name {
        "count" => &["detectors", "num", "delay"],
        "scan" | "rel_scan" => &["detectors", "motor", "start", "stop", "num"],
        "list_scan" => &["detectors", "motor", "positions"],
        "grid_scan" => &["detectors", "axes", "snake"],
        "fly" => &["flyers"],
        "sleep" => &["seconds"],
        "wait" => &["group", "timeout"],
        "open_run" => &["md"],
        "close_run" => &["exit_status", "reason"],
        "mv" | "mvr" => &["motor", "position", "motors", "positions"],
        "abs_set" => &["device", "value", "group", "wait"],
        "trigger" => &["device", "group", "wait"],
        "trigger_and_read" => &["detectors", "stream"],
        "kickoff" | "complete" => &["flyer", "group", "wait"],
        "collect" => &["flyer"],
        other => super::steps::messages_takes(other),
    }
}

/// Reads the arguments of one plan or stub, with errors naming it.
pub(crate) struct Args<'a> {
    pub raw: &'a RawCall,
    pub src: Src<'a>,
    /// `plan 'scan'`, `step 3 (mv)`.
    pub context: String,
    pub span: Range<usize>,
}

impl Args<'_> {
    /// Refuses arguments not in `takes`.
    pub fn only(&self, takes: &[&str]) -> Result<(), ConfigError> {
        for (arg, span) in self.raw.present() {
            if !takes.contains(&arg) {
                return Err(self.src.err(
                    &span,
                    ErrorKind::UnexpectedArgument {
                        argument: arg.to_owned(),
                        context: self.context.clone(),
                        takes: if takes.is_empty() {
                            "nothing".into()
                        } else {
                            takes.join(", ")
                        },
                    },
                ));
            }
        }
        Ok(())
    }

    pub fn missing(&self, argument: &'static str) -> ConfigError {
        self.src.err(
            &self.span,
            ErrorKind::MissingArgument {
                context: self.context.clone(),
                argument,
            },
        )
    }

    pub fn req<'v, T>(
        &self,
        v: &'v Option<Spanned<T>>,
        argument: &'static str,
    ) -> Result<&'v Spanned<T>, ConfigError> {
        v.as_ref().ok_or_else(|| self.missing(argument))
    }

    pub fn what(&self, arg: &str) -> String {
        format!("'{arg}' of {}", self.context)
    }

    pub fn f64(&self, v: &Option<Spanned<f64>>, arg: &'static str) -> Result<f64, ConfigError> {
        finite(self.src, self.req(v, arg)?, &self.what(arg))
    }

    pub fn opt_nonneg(
        &self,
        v: &Option<Spanned<f64>>,
        arg: &'static str,
    ) -> Result<Option<f64>, ConfigError> {
        v.as_ref()
            .map(|v| non_negative(self.src, v, &self.what(arg)))
            .transpose()
    }

    pub fn points(&self, v: &Spanned<i64>, arg: &str) -> Result<usize, ConfigError> {
        count(self.src, v, &self.what(arg), MAX_POINTS)
    }

    pub fn device(&self, v: &Spanned<String>, need: Need, role: &str) -> DeviceRef {
        DeviceRef {
            name: v.get_ref().clone(),
            location: self.src.loc(&v.span()),
            need,
            role: format!("{role} of {}", self.context),
            family: None,
        }
    }

    pub fn req_device(
        &self,
        v: &Option<Spanned<String>>,
        arg: &'static str,
        need: Need,
        role: &str,
    ) -> Result<DeviceRef, ConfigError> {
        Ok(self.device(self.req(v, arg)?, need, role))
    }

    /// A list of device names; `non_empty` refuses `[]`.
    pub fn devices(
        &self,
        v: &Option<Names>,
        arg: &'static str,
        need: Need,
        role: &str,
        non_empty: bool,
    ) -> Result<Vec<DeviceRef>, ConfigError> {
        let list = self.req(v, arg)?;
        if non_empty && list.get_ref().is_empty() {
            return Err(self.src.err(
                &list.span(),
                ErrorKind::Invalid(format!("{} must name at least one device", self.what(arg))),
            ));
        }
        Ok(self.names(list, need, role))
    }

    /// The devices of a name list (patterns are expanded at check time).
    pub fn names(&self, list: &Names, need: Need, role: &str) -> Vec<DeviceRef> {
        let whole = list.span();
        list.get_ref()
            .items
            .iter()
            .map(|(name, span)| DeviceRef {
                name: name.clone(),
                location: self.src.loc(span.as_ref().unwrap_or(&whole)),
                need,
                role: format!("{role} of {}", self.context),
                family: None,
            })
            .collect()
    }

    pub fn string(&self, v: &Option<Spanned<String>>) -> Option<String> {
        v.as_ref().map(|s| s.get_ref().clone())
    }
}

// ---------------------------------------------------------------------------
// Parsed plans

/// What a device named in a plan must be able to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Be read (a detector of a plan): motor, detector or signal.
    Readable,
    /// Be set (a motor of a plan): motor or signal.
    Movable,
    /// Be triggered: detector or signal.
    Triggerable,
    /// Fly: a flyer.
    Flyer,
    /// Be read and staged (a detector of a standard plan): motor or detector.
    PlanDetector,
    /// Be set and staged (the motor of a standard plan): motor.
    PlanMotor,
}

impl Need {
    fn allows(self, kind: DeviceKind) -> bool {
        match self {
            Need::Readable => kind.readable(),
            Need::Movable => kind.movable(),
            Need::Triggerable => kind.triggerable(),
            Need::Flyer => kind == DeviceKind::Flyer,
            Need::PlanDetector => matches!(kind, DeviceKind::Motor | DeviceKind::Detector),
            Need::PlanMotor => kind == DeviceKind::Motor,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Need::Readable => "readable (a motor, detector or signal)",
            Need::Movable => "movable (a motor or signal)",
            Need::Triggerable => "triggerable (a detector or signal)",
            Need::Flyer => "a flyer",
            Need::PlanDetector => {
                "a motor or detector (standard plans stage their devices, and signals cannot be staged; read signals with a trigger_and_read step)"
            }
            Need::PlanMotor => "a motor (standard plans stage their devices, and signals cannot be staged; set signals with an abs_set step)",
        }
    }
}

/// A device named in a plan file, where, and what it is used as.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRef {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub location: Location,
    /// What it must be able to do.
    pub need: Need,
    /// What it is used as (`a detector of plan 'scan'`).
    pub role: String,
    /// The device file family it belongs to (known once checked against a device file).
    pub family: Option<String>,
}

impl Need {
    /// The devices that fit, in the plural: `motors`, `motors and detectors`, ...
    fn fitting(self) -> &'static str {
        match self {
            Need::Readable => "readable devices",
            Need::Movable => "motors and signals",
            Need::Triggerable => "detectors and signals",
            Need::Flyer => "flyers",
            Need::PlanDetector => "motors and detectors",
            Need::PlanMotor => "motors",
        }
    }
}

impl DeviceRef {
    /// "did you mean ...? motors: ..." for an unknown name: only the
    /// devices that would fit where it is written.
    fn known(&self, set: &DeviceSet) -> String {
        const SHOWN: usize = 12;
        let fits: Vec<String> = set
            .iter()
            .filter(|d| self.need.allows(d.config.kind()))
            .map(|d| d.name.clone())
            .collect();
        if fits.is_empty() {
            return format!("no {} are declared", self.need.fitting());
        }
        let hint = super::error::known_list(&self.name, fits.iter().map(String::as_str));
        let mut out = match hint.split_once("? ") {
            Some((mean, _)) if mean.starts_with("did you mean") => format!("{mean}? "),
            _ => String::new(),
        };
        // Families said once each: readable for a beamline of 1000 motors.
        let listed = super::families::summarize(&fits, set);
        out.push_str(&format!("{}: ", self.need.fitting()));
        out.push_str(&listed[..listed.len().min(SHOWN)].join(", "));
        if listed.len() > SHOWN {
            out.push_str(&format!(", ... ({} more)", listed.len() - SHOWN));
        }
        out
    }

    /// Checks the name against `set`: known, and of a kind that fits.
    pub fn check(&self, set: &DeviceSet) -> Result<DeviceKind, ConfigError> {
        let err = |kind| ConfigError::new(self.location.clone(), kind);
        match set.kind(&self.name) {
            None => Err(err(ErrorKind::UnknownDevice {
                name: self.name.clone(),
                known: self.known(set),
            })),
            Some(k) if !self.need.allows(k) => Err(err(ErrorKind::WrongKind {
                name: self.name.clone(),
                actual: k.as_str(),
                role: self.role.clone(),
                expected: self.need.expected(),
            })),
            Some(k) => Ok(k),
        }
    }

    /// The running device.
    pub fn resolve(&self, devices: &Devices) -> Result<DeviceHandle, ConfigError> {
        devices.get(&self.name).cloned().ok_or_else(|| {
            ConfigError::new(
                self.location.clone(),
                ErrorKind::UnknownDevice {
                    name: self.name.clone(),
                    known: super::error::known_list(&self.name, devices.iter().map(|(n, _)| n)),
                },
            )
        })
    }
}
