//! Plan and device files: simulated beamlines and the plans to run on them,
//! written in TOML, for people who are not going to write Rust.
//!
//! * A **device file** ([`DeviceSet`], schema in [`devices`]) declares
//!   simulated motors, detectors bound to motors, signals and flyers, one by
//!   one or as generated families (`m0..m499`). [`DeviceSet::spawn`] starts
//!   them as actors.
//! * A **plan file** ([`PlanFile`], schema in [`plan`]) names a standard plan
//!   (`count`, `scan`, `rel_scan`, `list_scan`, `grid_scan`, `fly`) with its
//!   arguments, or lists plan stubs (`mv`, `trigger_and_read`, ...) to run in
//!   order, plus run metadata for the start document. It may name its device
//!   file (`devices = "beamline.toml"`, relative to the plan file).
//!
//! Both are checked without spawning anything ([`PlanFile::check`]); every
//! error is a [`ConfigError`] naming the file, line and column and what is
//! wrong. Parsing never panics on bad input, and sizes are capped
//! ([`MAX_POINTS`], [`MAX_DEVICES`]) so a typo cannot ask for 10¹² points.
//!
//! ```
//! use skyrun::config::{DeviceSet, PlanFile};
//! let devices = DeviceSet::parse(r#"
//! [[motor]]
//! name = "motor"
//! [[detector]]
//! name = "det"
//! motor = "motor"
//! "#, "beamline.toml").unwrap();
//! let plan = PlanFile::parse(r#"
//! [plan]
//! name = "scan"
//! detectors = ["det"]
//! motor = "motor"
//! start = -1
//! stop = 1
//! num = 5
//! "#, "scan.toml").unwrap();
//! assert_eq!(plan.check(&devices).unwrap().num_points, 5);
//!
//! let bad = PlanFile::parse("[plan]\nname = 'scan'\ndetectors = ['det']\nmotor = 'mtr'\nstart = 0\nstop = 1\nnum = 3\n", "scan.toml").unwrap();
//! assert_eq!(bad.check(&devices).unwrap_err().to_string(),
//!     "scan.toml:4:9: unknown device 'mtr' (did you mean 'motor'? motors: motor)");
//! ```

mod args;
pub mod devices;
mod error;
pub mod families;
pub mod plan;
pub mod preflight;
pub mod remote;
mod standard;
mod steps;
pub mod suspenders;

pub use args::{DeviceRef, Need};
pub use devices::{
    DetectorConfig, DeviceConfig, DeviceKind, DeviceSet, DeviceSpec, Devices, EpicsConfig,
    EpicsDevice, FlyerConfig, MotorConfig, PvTemplate, SignalConfig, MAX_DEVICES,
};
pub use error::{ConfigError, ErrorKind, Location};
pub use plan::{BuiltPlan, PlanBody, PlanFile, PlanSummary};
pub use standard::{Axis, StandardPlan, STANDARD_PLANS};
pub use steps::{Step, StepEntry, STUBS};

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use toml::Spanned;

use error::Src;

/// The most points (events) a plan (all its steps, or all its flyers,
/// together), a grid scan axis or a flyer may ask for.
pub const MAX_POINTS: u64 = 10_000_000;

/// Reads `path`, returning its display name and text.
fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(ConfigError::new(
            Location::file(file),
            ErrorKind::Io(e.to_string()),
        )),
    }
}

/// A finite number, or an error naming `what`.
fn finite(src: Src<'_>, v: &Spanned<f64>, what: &str) -> Result<f64, ConfigError> {
    let x = *v.get_ref();
    if x.is_finite() {
        Ok(x)
    } else {
        Err(src.err(
            &v.span(),
            ErrorKind::NotFinite {
                what: what.to_owned(),
                value: x,
            },
        ))
    }
}

/// A finite, non-negative number.
fn non_negative(src: Src<'_>, v: &Spanned<f64>, what: &str) -> Result<f64, ConfigError> {
    let x = finite(src, v, what)?;
    if x < 0.0 {
        return Err(src.err(
            &v.span(),
            ErrorKind::Negative {
                what: what.to_owned(),
                value: x,
            },
        ));
    }
    Ok(x)
}

/// A count in `0..=max`.
fn count(src: Src<'_>, v: &Spanned<i64>, what: &str, max: u64) -> Result<usize, ConfigError> {
    let n = *v.get_ref();
    if n < 0 {
        return Err(src.err(
            &v.span(),
            ErrorKind::Negative {
                what: what.to_owned(),
                value: n as f64,
            },
        ));
    }
    if n as u64 > max {
        return Err(src.err(
            &v.span(),
            ErrorKind::TooLarge {
                what: what.to_owned(),
                value: n as u128,
                max,
            },
        ));
    }
    usize::try_from(n).map_err(|_| {
        src.err(
            &v.span(),
            ErrorKind::TooLarge {
                what: what.to_owned(),
                value: n as u128,
                max,
            },
        )
    })
}

/// A TOML value as JSON; NaN and infinities are refused (JSON has none).
fn toml_to_json(src: Src<'_>, v: &Spanned<toml::Value>, what: &str) -> Result<Value, ConfigError> {
    fn conv(v: &toml::Value, path: &str) -> Result<Value, (String, f64)> {
        Ok(match v {
            toml::Value::String(s) => Value::from(s.clone()),
            toml::Value::Integer(i) => Value::from(*i),
            toml::Value::Float(f) if f.is_finite() => Value::from(*f),
            toml::Value::Float(f) => return Err((path.to_owned(), *f)),
            toml::Value::Boolean(b) => Value::from(*b),
            toml::Value::Datetime(d) => Value::from(d.to_string()),
            toml::Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| conv(x, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(t) => Value::Object(
                t.iter()
                    .map(|(k, x)| Ok((k.clone(), conv(x, &format!("{path}.{k}"))?)))
                    .collect::<Result<Map<_, _>, _>>()?,
            ),
        })
    }
    conv(v.get_ref(), what)
        .map_err(|(what, value)| src.err(&v.span(), ErrorKind::NotFinite { what, value }))
}

/// A TOML table read as `T`. Anything else is refused as "expected a
/// table": left to itself, serde reads a struct from an array too, field by
/// field, so `[[plan]]` for `[plan]` said "invalid type: table, expected a
/// string".
#[derive(Debug)]
pub(crate) struct Table<T>(T);

impl<T> Deref for Table<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OnlyTables<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyTables<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(OnlyTables(PhantomData)).map(Table)
    }
}

/// Metadata as written (`[metadata]`, a step's `md`), in file order.
type RawMd = indexmap::IndexMap<String, Spanned<toml::Value>>;

/// Metadata as a JSON map, refusing NaN and infinities.
fn metadata(src: Src<'_>, md: &RawMd, what: &str) -> Result<Map<String, Value>, ConfigError> {
    md.iter()
        .map(|(k, v)| Ok((k.clone(), toml_to_json(src, v, &format!("{what} '{k}'"))?)))
        .collect()
}

#[cfg(test)]
mod tests;
