//! EPICS devices in a device file: `[[epics_signal]]`, `[[epics_motor]]`
//! and their families, read into plain data ([`EpicsConfig`]).
//!
//! ```toml
//! [[epics_motor]]             # ophyd's EpicsMotor(prefix, name=...)
//! name = "th"
//! prefix = "BL:MTR1"          # the motor record: BL:MTR1.VAL, .RBV, .DMOV, ...
//! timeout = 30.0              # s; a longer move fails (default: none, as ophyd)
//!
//! [[epics_signal]]            # ophyd's EpicsSignal(read_pv, write_pv=None, name=...)
//! name = "gain"
//! read_pv = "BL:GAIN:RBV"     # required
//! write_pv = "BL:GAIN"        # default: read_pv
//! put_complete = true         # set is a put-with-completion (default: put, then wait for the readback)
//! tolerance = 0.01            # how close the readback must come (default: equal)
//! timeout = 5.0               # s; a longer set fails (default: none)
//!
//! [[epics_signal]]            # ophyd's EpicsSignalRO(read_pv, name=...): a detector
//! name = "ring_current"
//! read_pv = "BL:RING:CURRENT"
//! read_only = true
//!
//! [[epics_motor_family]]      # motors m1 .. m100 at BL:MTR1 .. BL:MTR100
//! prefix = "m"
//! count = 100
//! first = 1                   # first index (default 0)
//! pv = "BL:MTR{i}"            # the record prefix of member i
//!
//! [[epics_signal_family]]     # signals s0 .. s4999 reading BL:AO:00000 .. BL:AO:04999
//! prefix = "s"
//! count = 5000
//! read_pv = "BL:AO:{i:05}"    # {i}: the index; {i:05}: zero-padded to 5 digits
//! read_only = true            # and the other keys of [[epics_signal]] but name
//! ```
//!
//! A PV may be written `ca://NAME` (Channel Access, as ophyd-async writes
//! it; a bare name is Channel Access too) or `pva://NAME` (PVAccess, which
//! skyrun-epics supports experimentally: scalars, see its README). The
//! file only declares the devices: the `skyrun` binary (with its
//! `epics` feature) connects every PV of the file at once when a run starts
//! and fails with one message naming each PV that did not connect.
//!
//! ```
//! use skyrun::config::{DeviceKind, DeviceSet};
//! use skyrun::config::devices::{EpicsConfig, EpicsDevice};
//! let set = DeviceSet::parse(r#"
//! [[epics_motor_family]]
//! prefix = "m"
//! count = 3
//! first = 1
//! pv = "BL:MTR{i}"
//! [[epics_signal_family]]
//! prefix = "s"
//! count = 2
//! read_pv = "BL:AO:{i:05}"
//! read_only = true
//! "#, "beamline.toml").unwrap();
//! assert_eq!(set.names().collect::<Vec<_>>(), ["m1", "m2", "m3", "s0", "s1"]);
//! assert_eq!(set.kind("m3"), Some(DeviceKind::Motor));
//! assert_eq!(set.kind("s1"), Some(DeviceKind::Detector));
//! let Some(EpicsConfig { device: EpicsDevice::Motor { prefix }, .. }) = set.epics("m1")
//!     else { panic!() };
//! assert_eq!(prefix, "BL:MTR1");
//! let Some(EpicsConfig { device: EpicsDevice::Signal { read_pv, .. }, .. }) = set.epics("s1")
//!     else { panic!() };
//! assert_eq!(read_pv, "BL:AO:00001");
//! assert_eq!(set.epics_devices().count(), 5);
//!
//! let err = |t: &str| DeviceSet::parse(t, "d.toml").unwrap_err().to_string();
//! assert_eq!(err("[[epics_motor_family]]\nprefix = 'm'\ncount = 2\npv = 'BL:MTR{j}'\n"),
//!     "d.toml:4:6: 'pv' of [[epics_motor_family]]: unknown placeholder '{j}' in 'BL:MTR{j}' (use {i}, or {i:05} for the index zero-padded to 5 digits)");
//! assert_eq!(err("[[epics_motor_family]]\nprefix = 'm'\ncount = 2\npv = 'BL:MTR'\n"),
//!     "d.toml:4:6: 'pv' of [[epics_motor_family]]: 'BL:MTR' has no {i}, so all 2 members would share one PV");
//! ```

use std::ops::Range;

use toml::Spanned;

use super::parse::Builder;
use super::{DeviceConfig, DeviceKind, DeviceSpec};
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::Table;

/// An EPICS device declared in a device file.
#[derive(Debug, Clone, PartialEq)]
pub struct EpicsConfig {
    /// What it is and its PVs.
    pub device: EpicsDevice,
    /// Fails a move's or set's status after this many seconds (default: none).
    pub timeout: Option<f64>,
}

/// An EPICS motor or signal, with its PVs (templates already filled in).
#[derive(Debug, Clone, PartialEq)]
pub enum EpicsDevice {
    /// A motor record (ophyd's `EpicsMotor`).
    Motor {
        /// The record prefix (`BL:MTR1`: fields `BL:MTR1.VAL`, ...).
        prefix: String,
    },
    /// A PV, or a readback PV and a setpoint PV (ophyd's `EpicsSignal`,
    /// `EpicsSignalRO` when `read_only`).
    Signal {
        /// The PV read.
        read_pv: String,
        /// The PV written (`None`: `read_pv`).
        write_pv: Option<String>,
        /// Read only (a detector: never set).
        read_only: bool,
        /// `set` is a put-with-completion.
        put_complete: bool,
        /// How close the readback must come to a set's value.
        tolerance: Option<f64>,
    },
}

impl EpicsConfig {
    /// What a plan file may use it as.
    pub fn kind(&self) -> DeviceKind {
        match &self.device {
            EpicsDevice::Motor { .. } => DeviceKind::Motor,
            EpicsDevice::Signal {
                read_only: true, ..
            } => DeviceKind::Detector,
            EpicsDevice::Signal { .. } => DeviceKind::Signal,
        }
    }

    /// Its PV names: the record prefix of a motor, the read and write PVs of a signal.
    pub fn pvs(&self) -> Vec<&str> {
        match &self.device {
            EpicsDevice::Motor { prefix } => vec![prefix],
            EpicsDevice::Signal {
                read_pv, write_pv, ..
            } => std::iter::once(read_pv.as_str())
                .chain(write_pv.as_deref())
                .collect(),
        }
    }
}

/// `[[epics_motor]]` and `[[epics_motor_family]]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEpicsMotor {
    name: Option<Spanned<String>>,
    /// The record prefix of a single motor; the names' prefix of a family.
    prefix: Option<Spanned<String>>,
    count: Option<Spanned<i64>>,
    first: Option<Spanned<i64>>,
    /// A family's record prefix template.
    pv: Option<Spanned<String>>,
    timeout: Option<Spanned<f64>>,
}

/// `[[epics_signal]]` and `[[epics_signal_family]]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEpicsSignal {
    name: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    count: Option<Spanned<i64>>,
    first: Option<Spanned<i64>>,
    read_pv: Option<Spanned<String>>,
    write_pv: Option<Spanned<String>>,
    read_only: Option<Spanned<bool>>,
    put_complete: Option<Spanned<bool>>,
    tolerance: Option<Spanned<f64>>,
    timeout: Option<Spanned<f64>>,
}

/// A PV name or template, split into literal text and `{i}` placeholders.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// The index, zero-padded to this width (0: as is).
    Index(usize),
}

/// Parses a PV template: `{i}` the index, `{i:0N}` zero-padded to N digits.
fn template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("'}}' without '{{' in '{t}'"));
        }
        parts.push(Part::Text(rest[..open].to_owned()));
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("unclosed '{{' in '{t}'"));
        };
        let inner = &rest[open + 1..open + close];
        let width = match inner.split_once(':') {
            None if inner == "i" => 0,
            Some(("i", spec)) => match spec.strip_prefix('0').map(str::parse::<usize>) {
                Some(Ok(w)) if (1..=18).contains(&w) && spec.len() > 1 => w,
                _ => {
                    return Err(format!(
                        "bad format '{{{inner}}}' in '{t}' (use {{i:05}}: a 0 then the width, 1 to 18 digits)"
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "unknown placeholder '{{{inner}}}' in '{t}' (use {{i}}, or {{i:05}} for the index zero-padded to 5 digits)"
                ))
            }
        };
        parts.push(Part::Index(width));
        rest = &rest[open + close + 1..];
    }
    parts.push(Part::Text(rest.to_owned()));
    parts.retain(|p| *p != Part::Text(String::new()));
    Ok(parts)
}

/// A PV name template as the families of device files write it (`{i}` the
/// index, `{i:05}` the index zero-padded to 5 digits); `skyrun bench
/// --scenario epics` takes its PV names this way too.
///
/// ```
/// use skyrun::config::PvTemplate;
/// let t = PvTemplate::parse("BL:AO:{i:05}").unwrap();
/// assert_eq!(t.fill(7), "BL:AO:00007");
/// assert_eq!(PvTemplate::parse("BL:MTR{i}").unwrap().fill(12), "BL:MTR12");
/// assert!(PvTemplate::parse("BL:{j}").unwrap_err().contains("unknown placeholder"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PvTemplate(Vec<Part>);

impl PvTemplate {
    /// Parses `template`; the error says what is wrong with it.
    pub fn parse(template_text: &str) -> Result<Self, String> {
        template(template_text).map(PvTemplate)
    }

    /// The name for index `i`.
    pub fn fill(&self, i: usize) -> String {
        fill(&self.0, i)
    }
}

fn fill(parts: &[Part], i: usize) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(s) => s.clone(),
            Part::Index(w) => format!("{i:0w$}"),
        })
        .collect()
}

/// A PV name as the client takes it: `ca://` dropped, `pva://` kept (the
/// client routes it to PVAccess); blanks and control characters refused.
fn pv_name(name: &str) -> Result<String, String> {
    let (protocol, bare) = match name.strip_prefix("pva://") {
        Some(rest) => ("pva://", rest),
        None => ("", name.strip_prefix("ca://").unwrap_or(name)),
    };
    if bare.is_empty() {
        return Err("the PV name is empty".into());
    }
    if bare.len() > 512 {
        return Err(format!(
            "the PV name is {} bytes long (at most 512)",
            bare.len()
        ));
    }
    if let Some(c) = bare.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{}' has a {:?} in it: PV names have no blanks",
            bare.escape_debug(),
            c
        ));
    }
    Ok(format!("{protocol}{bare}"))
}

impl Builder<'_> {
    /// The PV names of `key` for `names` (a single device's, or a family's
    /// members with indices `first..`).
    fn pv_names(
        &self,
        table: &str,
        key: &str,
        v: &Spanned<String>,
        family: bool,
        first: usize,
        n: usize,
    ) -> Result<Vec<String>, ConfigError> {
        let bad = |msg: String| {
            self.src.err(
                &v.span(),
                ErrorKind::Invalid(format!("'{key}' of [[{table}]]: {msg}")),
            )
        };
        let text = v.get_ref();
        if !family {
            return Ok(vec![pv_name(text).map_err(bad)?]);
        }
        let parts = template(text.strip_prefix("ca://").unwrap_or(text)).map_err(bad)?;
        if n > 1 && !parts.iter().any(|p| matches!(p, Part::Index(_))) {
            return Err(bad(format!(
                "'{text}' has no {{i}}, so all {n} members would share one PV"
            )));
        }
        // Checked once: members differ only in their digits.
        pv_name(&fill(&parts, first)).map_err(bad)?;
        Ok((first..first + n).map(|i| fill(&parts, i)).collect())
    }

    /// Declares `name` as an EPICS device of `family`.
    fn add_epics(
        &mut self,
        name: String,
        at: &Range<usize>,
        line: usize,
        family: Option<&str>,
        config: EpicsConfig,
    ) -> Result<(), ConfigError> {
        if let Some(first) = self.devices.get(&name) {
            return Err(self.src.err(
                at,
                ErrorKind::DuplicateDevice {
                    name,
                    first_line: first.line,
                },
            ));
        }
        self.devices.insert(
            name.clone(),
            DeviceSpec {
                name,
                config: DeviceConfig::Epics(config),
                line,
                family: family.map(str::to_owned),
            },
        );
        Ok(())
    }

    /// An `[[epics_motor]]` (`family`: `[[epics_motor_family]]`) table.
    pub(super) fn epics_motor(
        &mut self,
        t: &Spanned<Table<RawEpicsMotor>>,
        family: bool,
    ) -> Result<(), ConfigError> {
        let table = if family {
            "epics_motor_family"
        } else {
            "epics_motor"
        };
        let (span, r) = (t.span(), t.get_ref());
        let timeout = self.opt_timeout(&r.timeout, &format!("'timeout' of [[{table}]]"))?;
        let (names_prefix, pv) = if family {
            (&r.prefix, &r.pv)
        } else {
            if let Some(p) = &r.pv {
                return Err(self.src.err(
                    &p.span(),
                    ErrorKind::Invalid(
                        "key 'pv' is not used in [[epics_motor]] (the record is 'prefix'; 'pv' is the template of [[epics_motor_family]])".into(),
                    ),
                ));
            }
            (&None, &r.prefix)
        };
        let naming = self.naming(
            table,
            &span,
            &r.name,
            names_prefix,
            &r.count,
            &r.first,
            family,
        )?;
        let missing = |argument| {
            self.src.err(
                &span,
                ErrorKind::MissingArgument {
                    context: format!("[[{table}]]"),
                    argument,
                },
            )
        };
        let pv = pv
            .as_ref()
            .ok_or_else(|| missing(if family { "pv" } else { "prefix" }))?;
        let key = if family { "pv" } else { "prefix" };
        let first = first_index(&r.first);
        let pvs = self.pv_names(table, key, pv, family, first, naming.names.len())?;
        let line = self.src.line(&span);
        let at = r.name.as_ref().map_or(span.clone(), |n| n.span());
        for (name, prefix) in naming.names.into_iter().zip(pvs) {
            let config = EpicsConfig {
                device: EpicsDevice::Motor { prefix },
                timeout,
            };
            self.add_epics(name, &at, line, naming.prefix.as_deref(), config)?;
        }
        Ok(())
    }

    /// An `[[epics_signal]]` (`family`: `[[epics_signal_family]]`) table.
    pub(super) fn epics_signal(
        &mut self,
        t: &Spanned<Table<RawEpicsSignal>>,
        family: bool,
    ) -> Result<(), ConfigError> {
        let table = if family {
            "epics_signal_family"
        } else {
            "epics_signal"
        };
        let (span, r) = (t.span(), t.get_ref());
        let naming = self.naming(table, &span, &r.name, &r.prefix, &r.count, &r.first, family)?;
        let timeout = self.opt_timeout(&r.timeout, &format!("'timeout' of [[{table}]]"))?;
        let tolerance = self.opt_timeout(&r.tolerance, &format!("'tolerance' of [[{table}]]"))?;
        let read_only = r.read_only.as_ref().is_some_and(|b| *b.get_ref());
        let put_complete = r.put_complete.as_ref().is_some_and(|b| *b.get_ref());
        let useless = |key: &str, s: Range<usize>, why: &str| {
            self.src.err(
                &s,
                ErrorKind::Invalid(format!("key '{key}' of [[{table}]] has no use {why}")),
            )
        };
        if read_only {
            for (key, v) in [
                ("write_pv", r.write_pv.as_ref().map(|v| v.span())),
                ("put_complete", r.put_complete.as_ref().map(|v| v.span())),
                ("tolerance", r.tolerance.as_ref().map(|v| v.span())),
                ("timeout", r.timeout.as_ref().map(|v| v.span())),
            ] {
                if let Some(s) = v {
                    return Err(useless(key, s, "with read_only = true (it is never set)"));
                }
            }
        }
        if let (true, Some(t)) = (put_complete, &r.tolerance) {
            return Err(useless(
                "tolerance",
                t.span(),
                "with put_complete = true (the IOC says when the put is done)",
            ));
        }
        let read = r.read_pv.as_ref().ok_or_else(|| {
            self.src.err(
                &span,
                ErrorKind::MissingArgument {
                    context: format!("[[{table}]]"),
                    argument: "read_pv",
                },
            )
        })?;
        let (first, n) = (first_index(&r.first), naming.names.len());
        let reads = self.pv_names(table, "read_pv", read, family, first, n)?;
        let writes = match &r.write_pv {
            Some(w) => Some(self.pv_names(table, "write_pv", w, family, first, n)?),
            None => None,
        };
        let line = self.src.line(&span);
        let at = r.name.as_ref().map_or(span.clone(), |n| n.span());
        for (k, (name, read_pv)) in naming.names.into_iter().zip(reads).enumerate() {
            let write_pv = writes
                .as_ref()
                .map(|w| w[k].clone())
                .filter(|w| *w != read_pv);
            let config = EpicsConfig {
                device: EpicsDevice::Signal {
                    read_pv,
                    write_pv,
                    read_only,
                    put_complete,
                    tolerance,
                },
                timeout,
            };
            self.add_epics(name, &at, line, naming.prefix.as_deref(), config)?;
        }
        Ok(())
    }
}

/// A family's first index (already checked by `naming`).
fn first_index(first: &Option<Spanned<i64>>) -> usize {
    first.as_ref().map_or(0, |f| (*f.get_ref()).max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let p = template("BL:AO:{i:05}").unwrap();
        assert_eq!(fill(&p, 42), "BL:AO:00042");
        assert_eq!(fill(&template("M{i}X{i:02}").unwrap(), 7), "M7X07");
        assert_eq!(fill(&template("PLAIN").unwrap(), 7), "PLAIN");
        for (t, msg) in [
            ("A{i", "unclosed '{' in 'A{i'"),
            ("A}", "'}' without '{' in 'A}'"),
            ("A{i:5}", "bad format '{i:5}'"),
            ("A{i:0}", "bad format '{i:0}'"),
            ("A{i:0x}", "bad format '{i:0x}'"),
            ("A{}", "unknown placeholder '{}'"),
            ("A{n}", "unknown placeholder '{n}'"),
        ] {
            let e = template(t).unwrap_err();
            assert!(e.starts_with(msg), "{t}: {e}");
        }
    }

    #[test]
    fn pv_names() {
        assert_eq!(pv_name("ca://BL:X").unwrap(), "BL:X");
        assert_eq!(pv_name("pva://BL:X").unwrap(), "pva://BL:X");
        assert_eq!(pv_name("pva://").unwrap_err(), "the PV name is empty");
        assert!(pv_name("BL X").unwrap_err().contains("no blanks"));
        assert_eq!(pv_name("ca://").unwrap_err(), "the PV name is empty");
    }
}
