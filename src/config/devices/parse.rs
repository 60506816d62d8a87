//! Parsing and validating a device file: the raw TOML shapes and the checks
//! that turn them into [`DeviceSpec`]s.

use std::collections::HashMap;
use std::ops::Range;

use indexmap::IndexMap;
use serde_json::Value;
use skyrun_actors::sim::Noise;
use toml::Spanned;

use super::model;
use super::raw::{RawDetector, RawFile, RawFlyer, RawMotor, RawSignal};
use super::{
    DetectorConfig, DeviceConfig, DeviceKind, DeviceSpec, FlyerConfig, ModelConfig, MotorConfig,
    SignalConfig, MAX_DEVICES,
};
use crate::config::error::{from_toml, known_list, ConfigError, ErrorKind, Src};
use crate::config::{count, finite, non_negative, toml_to_json, Table, MAX_POINTS};

// ---------------------------------------------------------------------------
// Validation

struct Family {
    members: Vec<String>,
}

pub(super) struct Builder<'a> {
    pub(super) src: Src<'a>,
    pub(super) devices: IndexMap<String, DeviceSpec>,
    families: HashMap<String, Family>,
}

/// The names a table declares: one, or a family's.
pub(super) struct Naming {
    pub(super) names: Vec<String>,
    pub(super) prefix: Option<String>,
}

impl Builder<'_> {
    fn opt_f64(
        &self,
        v: &Option<Spanned<f64>>,
        what: &str,
        default: f64,
    ) -> Result<f64, ConfigError> {
        v.as_ref()
            .map_or(Ok(default), |v| finite(self.src, v, what))
    }

    pub(super) fn opt_timeout(
        &self,
        v: &Option<Spanned<f64>>,
        what: &str,
    ) -> Result<Option<f64>, ConfigError> {
        v.as_ref()
            .map(|v| non_negative(self.src, v, what))
            .transpose()
    }

    fn opt_nonneg(&self, v: &Option<Spanned<f64>>, what: &str) -> Result<f64, ConfigError> {
        v.as_ref()
            .map_or(Ok(0.0), |v| non_negative(self.src, v, what))
    }

    /// The names of a `[[kind]]` (single) or `[[kind_family]]` table.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn naming(
        &self,
        table: &str,
        span: &Range<usize>,
        name: &Option<Spanned<String>>,
        prefix: &Option<Spanned<String>>,
        count_v: &Option<Spanned<i64>>,
        first: &Option<Spanned<i64>>,
        family: bool,
    ) -> Result<Naming, ConfigError> {
        let misplaced = |key: &str, s: &Range<usize>, hint: &str| {
            self.src.err(
                s,
                ErrorKind::Invalid(format!("key '{key}' is not used in [[{table}]]{hint}")),
            )
        };
        if !family {
            for (key, v) in [("prefix", prefix.as_ref().map(|p| p.span()))]
                .into_iter()
                .chain([("count", count_v.as_ref().map(|c| c.span()))])
                .chain([("first", first.as_ref().map(|c| c.span()))])
            {
                if let Some(s) = v {
                    return Err(misplaced(
                        key,
                        &s,
                        &format!(" (to declare many, use [[{table}_family]])"),
                    ));
                }
            }
            let name = name.as_ref().ok_or_else(|| {
                self.src.err(
                    span,
                    ErrorKind::MissingArgument {
                        context: format!("[[{table}]]"),
                        argument: "name",
                    },
                )
            })?;
            self.check_name(name.get_ref(), &name.span())?;
            return Ok(Naming {
                names: vec![name.get_ref().clone()],
                prefix: None,
            });
        }
        if let Some(n) = name {
            return Err(misplaced(
                "name",
                &n.span(),
                " (a family names its members PREFIX0, PREFIX1, ...: use 'prefix')",
            ));
        }
        let missing = |argument| {
            self.src.err(
                span,
                ErrorKind::MissingArgument {
                    context: format!("[[{table}]]"),
                    argument,
                },
            )
        };
        let prefix = prefix.as_ref().ok_or_else(|| missing("prefix"))?;
        let n = count(
            self.src,
            count_v.as_ref().ok_or_else(|| missing("count"))?,
            &format!("'count' of [[{table}]]"),
            MAX_DEVICES,
        )?;
        let first = match first {
            Some(f) => count(self.src, f, &format!("'first' of [[{table}]]"), MAX_POINTS)?,
            None => 0,
        };
        self.check_name(&format!("{}{first}", prefix.get_ref()), &prefix.span())?;
        if self.devices.len() as u64 + n as u64 > MAX_DEVICES {
            return Err(self.src.err(
                &count_v.as_ref().map_or(span.clone(), |c| c.span()),
                ErrorKind::TooLarge {
                    what: "the number of devices".into(),
                    value: self.devices.len() as u128 + n as u128,
                    max: MAX_DEVICES,
                },
            ));
        }
        let names = (first..first + n)
            .map(|i| format!("{}{i}", prefix.get_ref()))
            .collect();
        Ok(Naming {
            names,
            prefix: Some(prefix.get_ref().clone()),
        })
    }

    fn check_name(&self, name: &str, span: &Range<usize>) -> Result<(), ConfigError> {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(())
        } else {
            Err(self.src.err(
                span,
                ErrorKind::Invalid(format!(
                    "invalid device name '{name}': use letters, digits, '_' and '-'"
                )),
            ))
        }
    }

    fn add(
        &mut self,
        naming: Naming,
        span: &Range<usize>,
        name_span: Option<Range<usize>>,
        config: DeviceConfig,
    ) -> Result<(), ConfigError> {
        let line = self.src.line(span);
        let at = name_span.unwrap_or_else(|| span.clone());
        for name in &naming.names {
            if let Some(first) = self.devices.get(name) {
                return Err(self.src.err(
                    &at,
                    ErrorKind::DuplicateDevice {
                        name: name.clone(),
                        first_line: first.line,
                    },
                ));
            }
        }
        let family = naming.prefix.clone();
        if let Some(prefix) = naming.prefix {
            if config.kind() == DeviceKind::Motor {
                self.families.insert(
                    prefix,
                    Family {
                        members: naming.names.clone(),
                    },
                );
            }
        }
        for name in naming.names {
            self.devices.insert(
                name.clone(),
                DeviceSpec {
                    name,
                    config: config.clone(),
                    line,
                    family: family.clone(),
                },
            );
        }
        Ok(())
    }

    fn motor(&mut self, m: &Spanned<Table<RawMotor>>, family: bool) -> Result<(), ConfigError> {
        let span = m.span();
        let table = if family { "motor_family" } else { "motor" };
        let r = m.get_ref();
        let naming = self.naming(table, &span, &r.name, &r.prefix, &r.count, &r.first, family)?;
        let what = |k: &str| format!("'{k}' of [[{table}]]");
        let velocity = match &r.velocity {
            Some(v) => {
                let v2 = non_negative(self.src, v, &what("velocity"))?;
                (v2 > 0.0).then_some(v2)
            }
            None => None,
        };
        let timeout = match &r.timeout {
            Some(t) => Some(non_negative(self.src, t, &what("timeout"))?),
            None => None,
        };
        let limits = match &r.limits {
            None => None,
            Some(l) => {
                let v = l.get_ref();
                if v.len() != 2 {
                    return Err(self.src.err(
                        &l.span(),
                        ErrorKind::Invalid(format!(
                            "'limits' must be [low, high], got {} numbers",
                            v.len()
                        )),
                    ));
                }
                let lo = finite(self.src, &v[0], &what("limits"))?;
                let hi = finite(self.src, &v[1], &what("limits"))?;
                if lo > hi {
                    return Err(self.src.err(
                        &l.span(),
                        ErrorKind::Invalid(format!(
                            "'limits' must be [low, high] with low <= high, got [{lo}, {hi}]"
                        )),
                    ));
                }
                Some((lo, hi))
            }
        };
        let position = self.opt_f64(&r.position, &what("position"), 0.0)?;
        if let (Some((lo, hi)), Some(p)) = (limits, &r.position) {
            if position < lo || position > hi {
                return Err(self.src.err(
                    &p.span(),
                    ErrorKind::Invalid(format!(
                        "position {position} is outside the limits [{lo}, {hi}]"
                    )),
                ));
            }
        }
        let acceleration = match &r.acceleration {
            Some(a) => {
                let a2 = non_negative(self.src, a, &what("acceleration"))?;
                (a2 > 0.0).then_some(a2)
            }
            None => None,
        };
        let model = model::model(self.src, table, &r.latency, &r.faults, timeout)?;
        let config = DeviceConfig::Motor(MotorConfig {
            position,
            velocity,
            acceleration,
            settle_time: self.opt_nonneg(&r.settle_time, &what("settle_time"))?,
            timeout,
            limits,
            units: r.units.as_ref().map(|u| u.get_ref().clone()),
            model,
        });
        let name_span = r.name.as_ref().or(r.prefix.as_ref()).map(|n| n.span());
        self.add(naming, &span, name_span, config)
    }

    fn detector(
        &mut self,
        d: &Spanned<Table<RawDetector>>,
        family: bool,
    ) -> Result<(), ConfigError> {
        let span = d.span();
        let table = if family {
            "detector_family"
        } else {
            "detector"
        };
        let r = d.get_ref();
        let naming = self.naming(table, &span, &r.name, &r.prefix, &r.count, &r.first, family)?;
        let what = |k: &str| format!("'{k}' of [[{table}]]");
        match (&r.motor, &r.motor_family) {
            (None, None) => {
                return Err(self.src.err(
                    &span,
                    ErrorKind::MissingArgument {
                        context: format!("[[{table}]]"),
                        argument: "motor",
                    },
                ))
            }
            (Some(_), Some(f)) => {
                return Err(self.src.err(
                    &f.span(),
                    ErrorKind::Invalid("give either 'motor' or 'motor_family', not both".into()),
                ))
            }
            (None, Some(f)) if !family => {
                return Err(self.src.err(
                    &f.span(),
                    ErrorKind::Invalid(
                        "key 'motor_family' is only used in [[detector_family]]; a single detector takes 'motor'".into(),
                    ),
                ))
            }
            _ => {}
        }
        let noise = match &r.noise {
            None => "none",
            Some(n) => n.get_ref().as_str(),
        };
        let noise = match (noise, &r.noise_multiplier) {
            ("none", None) => Noise::None,
            ("poisson", None) => Noise::Poisson,
            ("uniform", m) => {
                Noise::Uniform(self.opt_nonneg(m, &what("noise_multiplier")).map(|v| {
                    if m.is_some() {
                        v
                    } else {
                        1.0
                    }
                })?)
            }
            ("none" | "poisson", Some(m)) => {
                return Err(self.src.err(
                    &m.span(),
                    ErrorKind::Invalid(format!(
                        "'noise_multiplier' only applies to noise = \"uniform\", not \"{noise}\""
                    )),
                ))
            }
            (other, _) => {
                let at = r.noise.as_ref().map_or(span.clone(), |n| n.span());
                return Err(self.src.err(
                    &at,
                    ErrorKind::Invalid(format!(
                        "unknown noise '{other}' (known: none, poisson, uniform)"
                    )),
                ));
            }
        };
        let sigma = self.opt_f64(&r.sigma, &what("sigma"), 1.0)?;
        if sigma <= 0.0 {
            let s = r.sigma.as_ref().map_or(span.clone(), |s| s.span());
            return Err(self.src.err(
                &s,
                ErrorKind::Invalid(format!("'sigma' must be positive, got {sigma}")),
            ));
        }
        let base = DetectorConfig {
            motor: r
                .motor
                .as_ref()
                .map(|m| m.get_ref().clone())
                .unwrap_or_default(),
            center: self.opt_f64(&r.center, &what("center"), 0.0)?,
            imax: self.opt_f64(&r.imax, &what("imax"), 1.0)?,
            sigma,
            noise,
            exposure_time: self.opt_nonneg(&r.exposure_time, &what("exposure_time"))?,
            readout_time: self.opt_nonneg(&r.readout_time, &what("readout_time"))?,
            dead_time: self.opt_nonneg(&r.dead_time, &what("dead_time"))?,
            timeout: self.opt_timeout(&r.timeout, &what("timeout"))?,
            model: ModelConfig::default(),
        };
        let base = DetectorConfig {
            model: model::model(self.src, table, &r.latency, &r.faults, base.timeout)?,
            ..base
        };
        let name_span = r.name.as_ref().or(r.prefix.as_ref()).map(|n| n.span());
        // `motor_family` bindings (by index) are resolved in check_bindings.
        self.add(naming, &span, name_span, DeviceConfig::Detector(base))
    }

    fn signal(&mut self, s: &Spanned<Table<RawSignal>>) -> Result<(), ConfigError> {
        let span = s.span();
        let r = s.get_ref();
        let naming = self.naming("signal", &span, &r.name, &None, &None, &None, false)?;
        let value = match &r.value {
            None => Value::from(0.0),
            Some(v) => match v.get_ref() {
                toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::String(_)
                | toml::Value::Boolean(_) => toml_to_json(self.src, v, "'value' of [[signal]]")?,
                other => {
                    return Err(self.src.err(
                        &v.span(),
                        ErrorKind::Invalid(format!(
                            "'value' of [[signal]] must be a number, string or boolean, got {} {}",
                            if other.is_array() { "an" } else { "a" },
                            other.type_str()
                        )),
                    ))
                }
            },
        };
        let timeout = self.opt_timeout(&r.timeout, "'timeout' of [[signal]]")?;
        let config = DeviceConfig::Signal(SignalConfig {
            value,
            units: r.units.as_ref().map(|u| u.get_ref().clone()),
            timeout,
            model: model::model(self.src, "signal", &r.latency, &r.faults, timeout)?,
        });
        let name_span = r.name.as_ref().map(|n| n.span());
        self.add(naming, &span, name_span, config)
    }

    fn flyer(&mut self, f: &Spanned<Table<RawFlyer>>) -> Result<(), ConfigError> {
        let span = f.span();
        let r = f.get_ref();
        let naming = self.naming("flyer", &span, &r.name, &None, &None, &None, false)?;
        let what = |k: &str| format!("'{k}' of [[flyer]]");
        let num = r.num_points.as_ref().ok_or_else(|| {
            self.src.err(
                &span,
                ErrorKind::MissingArgument {
                    context: "[[flyer]]".into(),
                    argument: "num_points",
                },
            )
        })?;
        let config = DeviceConfig::Flyer(FlyerConfig {
            num_points: count(self.src, num, &what("num_points"), MAX_POINTS)?,
            duration: self.opt_nonneg(&r.duration, &what("duration"))?,
            start: self.opt_f64(&r.start, &what("start"), -1.0)?,
            stop: self.opt_f64(&r.stop, &what("stop"), 1.0)?,
        });
        let name_span = r.name.as_ref().map(|n| n.span());
        self.add(naming, &span, name_span, config)
    }

    /// Binds detectors to their motors: checks `motor` names a motor and
    /// `motor_family` a motor family large enough.
    fn check_bindings(&mut self, raw: &RawFile) -> Result<(), ConfigError> {
        let singles = raw.detector.iter().map(|d| (d, false));
        let families = raw.detector_family.iter().map(|d| (d, true));
        for (d, family) in singles.chain(families) {
            let r = d.get_ref();
            let table = if family {
                "detector_family"
            } else {
                "detector"
            };
            let members: Vec<String> = if family {
                let prefix = r
                    .prefix
                    .as_ref()
                    .map(|p| p.get_ref().as_str())
                    .unwrap_or("");
                let n = r.count.as_ref().map_or(0, |c| *c.get_ref()).max(0) as usize;
                let first = r.first.as_ref().map_or(0, |c| *c.get_ref()).max(0) as usize;
                (first..first + n).map(|i| format!("{prefix}{i}")).collect()
            } else {
                r.name.iter().map(|n| n.get_ref().clone()).collect()
            };
            if let Some(m) = &r.motor {
                let name = m.get_ref();
                match self.devices.get(name).map(|d| d.config.kind()) {
                    Some(DeviceKind::Motor) => {}
                    Some(other) => {
                        return Err(self.src.err(
                            &m.span(),
                            ErrorKind::WrongKind {
                                name: name.clone(),
                                actual: other.as_str(),
                                role: format!("the 'motor' of [[{table}]]"),
                                expected: "a motor",
                            },
                        ))
                    }
                    None => {
                        let motors = self
                            .devices
                            .values()
                            .filter(|d| d.config.kind() == DeviceKind::Motor)
                            .map(|d| d.name.as_str());
                        return Err(self.src.err(
                            &m.span(),
                            ErrorKind::UnknownDevice {
                                name: name.clone(),
                                known: known_list(name, motors),
                            },
                        ));
                    }
                }
            }
            if let Some(f) = &r.motor_family {
                let Some(fam) = self.families.get(f.get_ref()) else {
                    let known = known_list(f.get_ref(), self.families.keys().map(String::as_str))
                        .replace("no devices are declared", "no motor families are declared");
                    return Err(self.src.err(
                        &f.span(),
                        ErrorKind::Invalid(format!(
                            "unknown motor family '{}' ({known})",
                            f.get_ref()
                        )),
                    ));
                };
                if fam.members.len() < members.len() {
                    return Err(self.src.err(
                        &f.span(),
                        ErrorKind::Invalid(format!(
                            "motor family '{}' has {} motors, fewer than the {} detectors bound to it by index",
                            f.get_ref(),
                            fam.members.len(),
                            members.len()
                        )),
                    ));
                }
                let motors = fam.members.clone();
                for (det, motor) in members.iter().zip(motors) {
                    if let Some(DeviceSpec {
                        config: DeviceConfig::Detector(c),
                        ..
                    }) = self.devices.get_mut(det)
                    {
                        c.motor = motor;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a device file declares.
pub(super) type Parsed = (IndexMap<String, DeviceSpec>, Option<u64>);

/// The devices declared in `text`, in declaration order, and the file's seed.
pub(super) fn parse(text: &str, file: &str) -> Result<Parsed, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| from_toml(file, text, &e))?;
    let src = Src { file, text };
    let seed = model::seed(src, &raw.seed)?;
    let mut b = Builder {
        src,
        devices: IndexMap::new(),
        families: HashMap::new(),
    };
    for m in &raw.motor {
        b.motor(m, false)?;
    }
    for m in &raw.motor_family {
        b.motor(m, true)?;
    }
    for d in &raw.detector {
        b.detector(d, false)?;
    }
    for d in &raw.detector_family {
        b.detector(d, true)?;
    }
    for s in &raw.signal {
        b.signal(s)?;
    }
    for f in &raw.flyer {
        b.flyer(f)?;
    }
    // Detectors may name motors declared anywhere in the file, so bind them last.
    b.check_bindings(&raw)?;
    // EPICS devices after the bindings: a simulated detector cannot read an EPICS motor.
    for m in &raw.epics_motor {
        b.epics_motor(m, false)?;
    }
    for m in &raw.epics_motor_family {
        b.epics_motor(m, true)?;
    }
    for s in &raw.epics_signal {
        b.epics_signal(s, false)?;
    }
    for s in &raw.epics_signal_family {
        b.epics_signal(s, true)?;
    }
    Ok((b.devices, seed))
}
