//! The timing and fault keys of a device file (`latency`, `faults`,
//! `seed`): checking them into a [`ModelConfig`].

use std::ops::Range;

use skyrun_actors::sim::{Faults, Latency, TimedOp, TimingError};
use toml::Spanned;

use super::raw::{RawFaults, RawLatency};
use super::ModelConfig;
use crate::config::error::{ConfigError, ErrorKind, Src};
use crate::config::Table;

const DISTS: &str = "fixed, uniform, normal, lognormal";

/// The file's `seed`: a non-negative integer.
pub(super) fn seed(src: Src<'_>, seed: &Option<Spanned<i64>>) -> Result<Option<u64>, ConfigError> {
    match seed {
        None => Ok(None),
        Some(s) => u64::try_from(*s.get_ref()).map(Some).map_err(|_| {
            src.err(
                &s.span(),
                ErrorKind::Invalid(format!(
                    "'seed' must be a non-negative integer, got {}",
                    s.get_ref()
                )),
            )
        }),
    }
}

/// The `latency` and `faults` tables of a device table called `table`;
/// `timeout` says whether the device has a status timeout (a status that
/// never completes needs one, or the plan would hang).
pub(super) fn model(
    src: Src<'_>,
    table: &str,
    latency: &Option<Spanned<Table<RawLatency>>>,
    faults: &Option<Spanned<Table<RawFaults>>>,
    timeout: Option<f64>,
) -> Result<ModelConfig, ConfigError> {
    let mut out = ModelConfig::default();
    if let Some(l) = latency {
        let r = l.get_ref();
        for (op, v) in [
            (TimedOp::Read, &r.read),
            (TimedOp::Trigger, &r.trigger),
            (TimedOp::Set, &r.set),
            (TimedOp::Stage, &r.stage),
        ] {
            if let Some(v) = v {
                let what = format!("latency '{}' of [[{table}]]", op.name());
                out.latency.push((op, distribution(src, v, &what)?));
            }
        }
    }
    if let Some(f) = faults {
        let r = f.get_ref();
        let mut faults = Faults::none();
        let bad = |span: &Range<usize>, e: TimingError| {
            src.err(span, ErrorKind::Invalid(format!("[[{table}]] faults: {e}")))
        };
        type SetRate = fn(Faults, f64) -> Result<Faults, TimingError>;
        let keys: [(&Option<Spanned<f64>>, SetRate); 4] = [
            (&r.set_fails, Faults::set_fails),
            (&r.trigger_fails, Faults::trigger_fails),
            (&r.never_completes, Faults::never_completes),
            (&r.stops_answering, Faults::stops_answering),
        ];
        for (v, set) in keys {
            if let Some(v) = v {
                faults = set(faults, *v.get_ref()).map_err(|e| bad(&v.span(), e))?;
            }
        }
        if faults.never_completes_rate() > 0.0 && timeout.is_none() {
            let at = r.never_completes.as_ref().map_or(f.span(), |v| v.span());
            return Err(src.err(
                &at,
                ErrorKind::Invalid(format!(
                    "'never_completes' needs a 'timeout' in [[{table}]]: without one a status that never completes hangs the plan"
                )),
            ));
        }
        out.faults = faults;
    }
    Ok(out)
}

/// A latency: a number (fixed seconds) or `{ dist = "...", ... }`.
fn distribution(
    src: Src<'_>,
    v: &Spanned<toml::Value>,
    what: &str,
) -> Result<Latency, ConfigError> {
    let err = |msg: String| src.err(&v.span(), ErrorKind::Invalid(format!("{what}: {msg}")));
    let number = |x: &toml::Value| match x {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    let t = match v.get_ref() {
        toml::Value::Table(t) => t,
        other => {
            return match number(other) {
                Some(x) => Latency::fixed(x).map_err(|e| err(e.to_string())),
                None => Err(err(format!(
                    "expected seconds (a number) or a table {{ dist = \"...\", ... }}, got {}",
                    other.type_str()
                ))),
            }
        }
    };
    let dist = match t.get("dist") {
        Some(toml::Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(err(format!(
                "'dist' must be a string, got {}",
                other.type_str()
            )))
        }
        None => return Err(err(format!("missing 'dist' (one of: {DISTS})"))),
    };
    let params: &[&str] = match dist {
        "fixed" => &["value"],
        "uniform" => &["low", "high"],
        "normal" => &["mean", "std"],
        "lognormal" => &["mu", "sigma"],
        other => {
            return Err(err(format!(
                "unknown distribution '{other}' (known: {DISTS})"
            )))
        }
    };
    for k in t.keys() {
        if k != "dist" && !params.contains(&k.as_str()) {
            return Err(err(format!(
                "key '{k}' is not a parameter of '{dist}' (it takes: {})",
                params.join(", ")
            )));
        }
    }
    let mut xs = [0.0; 2];
    for (x, p) in xs.iter_mut().zip(params) {
        *x = match t.get(*p) {
            None => return Err(err(format!("'{dist}' needs '{p}'"))),
            Some(val) => number(val)
                .ok_or_else(|| err(format!("'{p}' must be a number, got {}", val.type_str())))?,
        };
    }
    match dist {
        "fixed" => Latency::fixed(xs[0]),
        "uniform" => Latency::uniform(xs[0], xs[1]),
        "normal" => Latency::normal(xs[0], xs[1]),
        _ => Latency::lognormal(xs[0], xs[1]),
    }
    .map_err(|e| err(e.to_string()))
}
