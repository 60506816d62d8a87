//! Peak statistics after a scan, as Bluesky computes them: the numbers of
//! `bluesky.callbacks.fitting.PeakStats` ([`peak_stats`]), and the summary
//! BestEffortCallback keeps in `bec.peaks` ([`PeakSummary`]): per hinted
//! detector, along the one scanned motor, the max and min (position and
//! value), the centre of mass, the centre (mean of the half-maximum
//! crossings) and the FWHM (first to last crossing).
//!
//! The definitions are Bluesky 1.15's, number for number (checked against
//! it by `tests/peak_stats.rs`):
//! * `max`, `min`: the motor position and the reading at the first largest
//!   (smallest) reading;
//! * `com`: `scipy.ndimage.center_of_mass(y)` (the index `Σ i·yᵢ / Σ yᵢ`),
//!   mapped to a motor position by linear interpolation (`np.interp`,
//!   clamped to the ends);
//! * `mid = (max(y) + min(y)) / 2`; a crossing is between points `i` and
//!   `i+1` where `y > mid` changes, placed by linear interpolation;
//!   `cen` is the mean of the crossings, `fwhm` the distance from the first
//!   to the last (needs two crossings).
//!
//! ```
//! use skyrun::callbacks::peak_stats;
//! let x: Vec<f64> = (0..101).map(|i| -5.0 + 0.1 * i as f64).collect();
//! let y: Vec<f64> = x.iter().map(|x| (-(x - 0.5_f64).powi(2) / 2.0).exp()).collect();
//! let p = peak_stats(&x, &y).unwrap();
//! assert!((p.max.0 - 0.5).abs() < 1e-9);
//! assert!((p.cen.unwrap() - 0.5).abs() < 1e-3);
//! // The FWHM of a Gaussian is 2·√(2 ln 2)·σ ≈ 2.3548 σ.
//! assert!((p.fwhm.unwrap() - 2.3548).abs() < 0.01);
//! ```

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::Mutex;
use serde_json::Value;

use crate::{Document, Event, RunEngine};

/// The statistics of one detector along one motor.
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    /// `(x, y)` at the largest reading.
    pub max: (f64, f64),
    /// `(x, y)` at the smallest reading.
    pub min: (f64, f64),
    /// The centre of mass, as a motor position.
    pub com: f64,
    /// The mean of the half-maximum crossings (none when `y` never crosses).
    pub cen: Option<f64>,
    /// The positions where `y` crosses `(max + min) / 2`.
    pub crossings: Vec<f64>,
    /// Last crossing minus first (needs two crossings).
    pub fwhm: Option<f64>,
}

/// Bluesky's PeakStats of readings `y` at positions `x` (same length);
/// `None` when there are no points or the lengths differ.
pub fn peak_stats(x: &[f64], y: &[f64]) -> Option<Peak> {
    if x.is_empty() || x.len() != y.len() {
        return None;
    }
    // np.argmax / np.argmin: the first extreme.
    let (mut imax, mut imin) = (0, 0);
    for i in 1..y.len() {
        if y[i] > y[imax] {
            imax = i;
        }
        if y[i] < y[imin] {
            imin = i;
        }
    }
    let sum: f64 = y.iter().sum();
    let moment: f64 = y.iter().enumerate().map(|(i, v)| i as f64 * v).sum();
    let com = interp(moment / sum, x);
    let mid = (y[imax] + y[imin]) / 2.0;
    let crossings: Vec<f64> = (0..y.len() - 1)
        .filter(|&i| (y[i] > mid) != (y[i + 1] > mid))
        .map(|i| {
            let (y0, y1) = (y[i] - mid, y[i + 1] - mid);
            let m = (y1 - y0) / (x[i + 1] - x[i]);
            -y0 / m + x[i]
        })
        .collect();
    let cen =
        (!crossings.is_empty()).then(|| crossings.iter().sum::<f64>() / crossings.len() as f64);
    let fwhm =
        (crossings.len() >= 2).then(|| (crossings[crossings.len() - 1] - crossings[0]).abs());
    Some(Peak {
        max: (x[imax], y[imax]),
        min: (x[imin], y[imin]),
        com,
        cen,
        crossings,
        fwhm,
    })
}

/// `np.interp(at, arange(len(x)), x)`: linear between neighbours, clamped
/// to the ends, NaN in, NaN out.
fn interp(at: f64, x: &[f64]) -> f64 {
    if at.is_nan() {
        return f64::NAN;
    }
    let last = x.len() - 1;
    if at <= 0.0 {
        return x[0];
    }
    if at >= last as f64 {
        return x[last];
    }
    let i = at.floor() as usize;
    let f = at - i as f64;
    x[i] + f * (x[i + 1] - x[i])
}

/// The peaks of one run: per detector, along `motor`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPeaks {
    /// The run's uid.
    pub run_uid: String,
    /// The scanned motor's field (the x of every peak).
    pub motor: String,
    /// Per hinted numeric detector field, in descriptor order.
    pub peaks: IndexMap<String, Peak>,
}

/// Collects the scanned motor and the hinted detector fields of each run,
/// and computes their [`Peak`]s when the run stops, as BestEffortCallback
/// does: only runs with one dimension (`hints.dimensions` of the start
/// document naming one field), only the dimension's stream, only numeric
/// fields (`dtype` `number` or `integer`), the dimension's field excluded.
/// A run scanned over time (`count`) has no motor field and no peaks.
///
/// ```
/// use skyrun::{callbacks::PeakSummary, plans, RunEngine};
/// use skyrun_actors::{sim::{SynAxis, SynGauss}, DeviceHandle};
/// actix::System::new().block_on(async {
///     let re = RunEngine::new();
///     let motor = SynAxis::new("motor").with_velocity(1000.0);
///     let det = SynGauss::new("det", motor.probe(), 0.5, 10.0, 1.0);
///     let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));
///     let summary = PeakSummary::subscribe(&re);
///     re.run(plans::scan(vec![det], &motor, -2.0, 2.0, 41)).await.unwrap();
///     let runs = summary.lock().runs().to_vec();
///     let peak = &runs[0].peaks["det"];
///     assert_eq!(runs[0].motor, "motor");
///     assert!((peak.max.0 - 0.5).abs() < 1e-9 && (peak.max.1 - 10.0).abs() < 1e-9);
///     assert!(runs[0].to_string().contains("det"));
/// });
/// ```
#[derive(Debug, Default)]
pub struct PeakSummary {
    current: Option<Collecting>,
    runs: Vec<RunPeaks>,
}

#[derive(Debug)]
struct Collecting {
    run_uid: String,
    motor: String,
    stream: String,
    descriptor: Option<String>,
    fields: Vec<String>,
    x: Vec<f64>,
    y: IndexMap<String, Vec<f64>>,
}

impl PeakSummary {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    /// A summary fed by every document of `re` (a subscriber of its own).
    pub fn subscribe(re: &RunEngine) -> Arc<Mutex<PeakSummary>> {
        let summary = Arc::new(Mutex::new(PeakSummary::new()));
        let s = summary.clone();
        re.subscribe(move |_, doc| s.lock().document(doc));
        summary
    }

    /// The peaks of every run that stopped so far, oldest first.
    pub fn runs(&self) -> &[RunPeaks] {
        &self.runs
    }

    /// Takes one document.
    pub fn document(&mut self, doc: &Document) {
        match doc {
            Document::Start(start) => {
                self.current = one_dimension(&start.metadata).map(|(motor, stream)| Collecting {
                    run_uid: start.uid.clone(),
                    motor,
                    stream,
                    descriptor: None,
                    fields: Vec::new(),
                    x: Vec::new(),
                    y: IndexMap::new(),
                });
            }
            Document::Descriptor(d) => {
                let Some(c) = &mut self.current else { return };
                if d.name != c.stream
                    || c.descriptor.is_some()
                    || !d.data_keys.contains_key(&c.motor)
                {
                    return;
                }
                c.descriptor = Some(d.uid.clone());
                c.fields = d
                    .hints
                    .values()
                    .flat_map(|h| h.field_names())
                    .filter(|f| **f != c.motor)
                    .filter(|f| {
                        d.data_keys
                            .get(*f)
                            .is_some_and(|k| k.dtype == "number" || k.dtype == "integer")
                    })
                    .cloned()
                    .collect();
            }
            Document::Event(e) => self.on_event(e),
            Document::EventPage(p) => p.events().iter().for_each(|e| self.on_event(e)),
            Document::Stop(_) => {
                let Some(c) = self.current.take() else { return };
                let mut peaks = IndexMap::new();
                for f in &c.fields {
                    let ys = c.y.get(f).map(Vec::as_slice).unwrap_or(&[]);
                    let (x, y): (Vec<f64>, Vec<f64>) =
                        c.x.iter()
                            .zip(ys)
                            .filter(|(_, y)| !y.is_nan())
                            .map(|(x, y)| (*x, *y))
                            .unzip();
                    if let Some(p) = peak_stats(&x, &y) {
                        peaks.insert(f.clone(), p);
                    }
                }
                if !peaks.is_empty() {
                    self.runs.push(RunPeaks {
                        run_uid: c.run_uid,
                        motor: c.motor,
                        peaks,
                    });
                }
            }
            // External assets carry no values to fit.
            _ => {}
        }
    }

    fn on_event(&mut self, e: &Event) {
        let Some(c) = &mut self.current else { return };
        if c.descriptor.as_deref() != Some(e.descriptor.as_str()) {
            return;
        }
        let Some(x) = e.data.get(&c.motor).and_then(Value::as_f64) else {
            return;
        };
        // As PeakStats: an event lacking the detector's field is skipped for it.
        c.x.push(x);
        for f in &c.fields {
            if let Some(v) = e.data.get(f).and_then(Value::as_f64) {
                c.y.entry(f.clone()).or_default().push(v);
            }
        }
        let n = c.x.len();
        for f in &c.fields {
            let ys = c.y.entry(f.clone()).or_default();
            if ys.len() < n {
                // Keep x and y aligned per field: pad with NaN, removed at the end.
                ys.push(f64::NAN);
            }
        }
    }
}

/// The one field and stream of `hints.dimensions`, unless it is `time`.
fn one_dimension(md: &serde_json::Map<String, Value>) -> Option<(String, String)> {
    let dims = md.get("hints")?.get("dimensions")?.as_array()?;
    let [dim] = dims.as_slice() else { return None };
    let fields = dim.get(0)?.as_array()?;
    let [field] = fields.as_slice() else {
        return None;
    };
    let field = field.as_str()?;
    let stream = dim.get(1)?.as_str()?;
    (field != "time").then(|| (field.to_owned(), stream.to_owned()))
}

/// A number as Python's `%.6g`: six significant digits, trailing zeros dropped.
///
/// ```
/// use skyrun::callbacks::peak_stats::g6;
/// assert_eq!(g6(0.5), "0.5");
/// assert_eq!(g6(1012.0), "1012");
/// assert_eq!(g6(2.354820045), "2.35482");
/// assert_eq!(g6(1.5e-7), "1.5e-07");
/// ```
pub fn g6(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        let s = format!("{v:.5e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = trim_zeros(mantissa);
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = usize::try_from(5 - exp).unwrap_or(0);
    trim_zeros(&format!("{v:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

impl fmt::Display for RunPeaks {
    /// The table: one row per detector, `com cen max min fwhm` along the motor.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .peaks
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .max(8);
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), g6);
        let at = |(x, y): (f64, f64)| format!("{} at {}", g6(y), g6(x));
        writeln!(
            f,
            "{:<w$}  {:>10}  {:>10}  {:>10}  {:>22}  {:>22}",
            "detector", "com", "cen", "fwhm", "max", "min"
        )?;
        for (name, p) in &self.peaks {
            writeln!(
                f,
                "{:<w$}  {:>10}  {:>10}  {:>10}  {:>22}  {:>22}",
                name,
                g6(p.com),
                opt(p.cen),
                opt(p.fwhm),
                at(p.max),
                at(p.min),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn com_interpolates_and_clamps_like_numpy() {
        let x = [10.0, 20.0, 30.0];
        assert_eq!(interp(0.5, &x), 15.0);
        assert_eq!(interp(-1.0, &x), 10.0);
        assert_eq!(interp(9.0, &x), 30.0);
        assert!(interp(f64::NAN, &x).is_nan());
    }

    #[test]
    fn no_crossing_no_cen_and_one_crossing_no_fwhm() {
        let flat = peak_stats(&[0.0, 1.0, 2.0], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!((flat.cen, flat.fwhm), (None, None));
        let step = peak_stats(&[0.0, 1.0, 2.0, 3.0], &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(step.crossings, vec![1.5]);
        assert_eq!((step.cen, step.fwhm), (Some(1.5), None));
        assert_eq!(peak_stats(&[], &[]), None);
        assert_eq!(peak_stats(&[1.0], &[1.0, 2.0]), None);
    }
}
