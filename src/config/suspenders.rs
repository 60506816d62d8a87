//! `[[suspender]]` tables of a device file: Bluesky's suspenders
//! (`bluesky.suspenders`) on a device of the file, installed on the engine
//! before the plan runs (a [`Suspender`] each).
//!
//! ```toml
//! [[suspender]]
//! signal = "ring_current"   # required: a readable device of this file
//! below = 100.0             # SuspendFloor: suspends below 100 ...
//! resume_above = 150.0      # ... resumes at 150 or more (default: the floor)
//! sleep = 5.0               # s to wait once it may resume (default 0)
//! message = "beam dump"     # added to the suspension's justification
//!
//! # One condition per table, as Bluesky's classes:
//! #   below [+ resume_above]   SuspendFloor
//! #   above [+ resume_below]   SuspendCeil
//! #   when = "high" | "low"    SuspendBoolHigh / SuspendBoolLow
//! #   in_band = [low, high]    SuspendInBand (suspends outside the band)
//! #   out_band = [low, high]   SuspendOutBand (suspends inside it)
//! ```
//!
//! ```
//! use skyrun::config::DeviceSet;
//! let set = DeviceSet::parse(
//!     "[[signal]]\nname = 'ring'\nvalue = 400.0\n[[suspender]]\nsignal = 'ring'\nbelow = 100.0\nresume_above = 150.0\nsleep = 5.0\n",
//!     "d.toml",
//! ).unwrap();
//! assert_eq!(set.suspenders()[0].signal, "ring");
//! let err = DeviceSet::parse("[[signal]]\nname = 'ring'\n[[suspender]]\nsignal = 'ring'\n", "d.toml").unwrap_err();
//! assert!(err.to_string().starts_with("d.toml:3:1: [[suspender]] on 'ring' needs one condition"), "{err}");
//! let err = DeviceSet::parse("[[suspender]]\nsignal = 'ring'\nbelow = 1.0\n", "d.toml").unwrap_err();
//! assert_eq!(err.to_string(), "d.toml:2:10: unknown device 'ring' (no devices are declared)");
//! ```

use serde::Deserialize;
use skyrun_actors::DeviceHandle;
use toml::Spanned;

use super::error::{from_toml, ConfigError, ErrorKind, Src};
use super::Table;
use crate::run_engine::{Condition, Suspender, SuspenderError};

/// The raw shape of a `[[suspender]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSuspender {
    signal: Option<Spanned<String>>,
    below: Option<Spanned<f64>>,
    resume_above: Option<Spanned<f64>>,
    above: Option<Spanned<f64>>,
    resume_below: Option<Spanned<f64>>,
    when: Option<Spanned<String>>,
    in_band: Option<Spanned<[f64; 2]>>,
    out_band: Option<Spanned<[f64; 2]>>,
    sleep: Option<Spanned<f64>>,
    message: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct RawSuspenders {
    #[serde(default)]
    suspender: Vec<Spanned<Table<RawSuspender>>>,
}

/// One `[[suspender]]` table, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspenderSpec {
    /// The device it watches.
    pub signal: String,
    /// When it suspends and when it may resume.
    pub condition: Condition,
    /// Seconds to wait once it may resume.
    pub sleep: f64,
    /// Added to the justification.
    pub message: String,
}

impl SuspenderSpec {
    /// The suspender on `signal` (the spawned device this table names).
    pub fn build(&self, signal: &DeviceHandle) -> Result<Suspender, SuspenderError> {
        let s = match self.condition {
            Condition::Floor {
                below,
                resume_above,
            } => Suspender::floor(signal, below, resume_above)?,
            Condition::Ceil {
                above,
                resume_below,
            } => Suspender::ceil(signal, above, resume_below)?,
            Condition::BoolHigh => Suspender::bool_high(signal),
            Condition::BoolLow => Suspender::bool_low(signal),
            Condition::InBand { low, high } => Suspender::in_band(signal, low, high)?,
            Condition::OutBand { low, high } => Suspender::out_band(signal, low, high)?,
        };
        Ok(s.sleep(self.sleep).tripped_message(self.message.clone()))
    }
}

/// The `[[suspender]]` tables of a device file; `readable(name)` says
/// whether the file declares a readable device of that name (`None`: none at
/// all, with the names it knows for the message).
pub(crate) fn parse(
    text: &str,
    file: &str,
    readable: impl Fn(&str) -> Result<bool, String>,
) -> Result<Vec<SuspenderSpec>, ConfigError> {
    let raw: RawSuspenders = toml::from_str(text).map_err(|e| from_toml(file, text, &e))?;
    let src = Src { file, text };
    let invalid =
        |span: &std::ops::Range<usize>, msg: String| src.err(span, ErrorKind::Invalid(msg));
    let mut out = Vec::with_capacity(raw.suspender.len());
    for t in &raw.suspender {
        let span = t.span();
        let r = t.get_ref();
        let Some(signal) = &r.signal else {
            return Err(invalid(
                &span,
                "[[suspender]] needs signal = \"DEVICE\"".into(),
            ));
        };
        let name = signal.get_ref().clone();
        match readable(&name) {
            Ok(true) => {}
            Ok(false) => {
                return Err(invalid(
                    &signal.span(),
                    format!("[[suspender]] watches '{name}', which cannot be read (a flyer)"),
                ))
            }
            Err(known) => {
                return Err(src.err(
                    &signal.span(),
                    ErrorKind::UnknownDevice {
                        name: name.clone(),
                        known,
                    },
                ))
            }
        }
        let mut conditions = Vec::new();
        if let Some(b) = &r.below {
            let resume = r
                .resume_above
                .as_ref()
                .map_or(*b.get_ref(), |x| *x.get_ref());
            conditions.push(Condition::Floor {
                below: *b.get_ref(),
                resume_above: resume,
            });
        }
        if let Some(a) = &r.above {
            let resume = r
                .resume_below
                .as_ref()
                .map_or(*a.get_ref(), |x| *x.get_ref());
            conditions.push(Condition::Ceil {
                above: *a.get_ref(),
                resume_below: resume,
            });
        }
        if let Some(w) = &r.when {
            conditions.push(match w.get_ref().as_str() {
                "high" => Condition::BoolHigh,
                "low" => Condition::BoolLow,
                other => {
                    return Err(invalid(
                        &w.span(),
                        format!(
                            "when = '{}': expected \"high\" or \"low\"",
                            other.escape_debug()
                        ),
                    ))
                }
            });
        }
        if let Some(b) = &r.in_band {
            let [low, high] = *b.get_ref();
            conditions.push(Condition::InBand { low, high });
        }
        if let Some(b) = &r.out_band {
            let [low, high] = *b.get_ref();
            conditions.push(Condition::OutBand { low, high });
        }
        let stray = [
            (
                r.below.is_none(),
                r.resume_above.as_ref().map(|x| x.span()),
                "resume_above",
                "below",
            ),
            (
                r.above.is_none(),
                r.resume_below.as_ref().map(|x| x.span()),
                "resume_below",
                "above",
            ),
        ];
        for (missing, at, key, needs) in stray {
            if let (true, Some(at)) = (missing, at) {
                return Err(invalid(&at, format!("{key} is given without {needs}")));
            }
        }
        let condition = match conditions.as_slice() {
            [c] => *c,
            [] => return Err(invalid(&span, format!("[[suspender]] on '{name}' needs one condition: below, above, when, in_band or out_band"))),
            _ => return Err(invalid(&span, format!("[[suspender]] on '{name}' gives several conditions: give one of below, above, when, in_band or out_band per table"))),
        };
        let sleep = match &r.sleep {
            None => 0.0,
            Some(s) if s.get_ref().is_finite() && *s.get_ref() >= 0.0 => *s.get_ref(),
            Some(s) => {
                return Err(invalid(
                    &s.span(),
                    format!(
                        "sleep must be a non-negative number of seconds, got {}",
                        s.get_ref()
                    ),
                ))
            }
        };
        let spec = SuspenderSpec {
            signal: signal.get_ref().clone(),
            condition,
            sleep,
            message: r
                .message
                .as_ref()
                .map(|m| m.get_ref().clone())
                .unwrap_or_default(),
        };
        // The thresholds are checked as the engine's Suspender checks them.
        if let Err(reason) = spec.condition.check() {
            return Err(invalid(
                &span,
                format!("[[suspender]] on '{name}': {reason}"),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}
