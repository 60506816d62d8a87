//! Timing and faults of simulated devices: how long a `read`, `trigger`,
//! `set` or `stage` takes (a [`Latency`] drawn from a distribution), and
//! what goes wrong how often ([`Faults`]: a set or trigger whose status
//! fails, a status that never completes, a device that stops answering).
//!
//! Every draw comes from the device's own random stream, seeded from a
//! seed and the device name ([`Timing::seeded`]), so a plan run twice
//! against the same devices draws the same latencies and the same faults at
//! the same requests, whatever the other devices do.
//!
//! ```
//! use skyrun_actors::sim::{Faults, Latency, TimedOp, Timing};
//! let mut a = Timing::seeded(42)
//!     .with_latency(TimedOp::Set, Latency::normal(0.02, 0.005).unwrap())
//!     .with_faults(Faults::none().set_fails(0.5).unwrap());
//! let mut b = a.clone();
//! a.bind("m1");
//! b.bind("m1");
//! let draws = |t: &mut Timing| (0..5).map(|_| (t.latency(TimedOp::Set), t.fault(TimedOp::Set))).collect::<Vec<_>>();
//! assert_eq!(draws(&mut a), draws(&mut b));
//! ```

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal};

/// The operations whose duration is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimedOp {
    /// `read()`: the reply comes after the latency.
    Read,
    /// `trigger()`: the status completes after the latency (on top of a
    /// detector's exposure and readout).
    Trigger,
    /// `set()`: the move starts after the latency (a command overhead), and
    /// the status completes when the move (and settling) is done.
    Set,
    /// `stage()` and `unstage()`: the reply comes after the latency.
    Stage,
}

impl TimedOp {
    /// Every modelled operation.
    pub const ALL: [TimedOp; 4] = [
        TimedOp::Read,
        TimedOp::Trigger,
        TimedOp::Set,
        TimedOp::Stage,
    ];

    /// `read`, `trigger`, `set` or `stage` (the keys of a device file's `latency` table).
    pub fn name(self) -> &'static str {
        match self {
            TimedOp::Read => "read",
            TimedOp::Trigger => "trigger",
            TimedOp::Set => "set",
            TimedOp::Stage => "stage",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A parameter of a distribution that is out of its domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TimingError(String);

impl TimingError {
    fn new(msg: impl Into<String>) -> Self {
        TimingError(msg.into())
    }
}

/// A duration in seconds drawn from a distribution. Draws below zero
/// (possible with [`Latency::Normal`]) count as zero.
///
/// ```
/// use skyrun_actors::sim::Latency;
/// assert_eq!(Latency::fixed(0.5).unwrap().to_string(), "fixed 0.5 s");
/// assert_eq!(Latency::uniform(0.2, 0.1).unwrap_err().to_string(),
///     "uniform latency needs low <= high, got low 0.2, high 0.1");
/// assert!(Latency::lognormal(-4.0, 0.5).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always `secs`.
    Fixed(f64),
    /// Uniform in `[low, high]`.
    Uniform {
        /// Smallest value, s.
        low: f64,
        /// Largest value, s.
        high: f64,
    },
    /// Normal with `mean` and standard deviation `std` (negative draws are 0).
    Normal {
        /// Mean, s.
        mean: f64,
        /// Standard deviation, s.
        std: f64,
    },
    /// Log-normal: `exp(N(mu, sigma))` seconds (median `exp(mu)`), a long tail.
    LogNormal {
        /// Mean of the logarithm (ln s).
        mu: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
}

fn finite_nonneg(what: &str, x: f64) -> Result<f64, TimingError> {
    if !x.is_finite() {
        Err(TimingError::new(format!(
            "{what} must be a finite number, got {x}"
        )))
    } else if x < 0.0 {
        Err(TimingError::new(format!(
            "{what} must not be negative, got {x}"
        )))
    } else {
        Ok(x)
    }
}

impl Latency {
    /// Always `secs` (finite, non-negative).
    pub fn fixed(secs: f64) -> Result<Self, TimingError> {
        Ok(Latency::Fixed(finite_nonneg("a fixed latency", secs)?))
    }

    /// Uniform in `[low, high]` (both finite, non-negative, `low <= high`).
    pub fn uniform(low: f64, high: f64) -> Result<Self, TimingError> {
        let low = finite_nonneg("'low' of a uniform latency", low)?;
        let high = finite_nonneg("'high' of a uniform latency", high)?;
        if low > high {
            return Err(TimingError::new(format!(
                "uniform latency needs low <= high, got low {low}, high {high}"
            )));
        }
        Ok(Latency::Uniform { low, high })
    }

    /// Normal with `mean` and standard deviation `std` (both finite, non-negative).
    pub fn normal(mean: f64, std: f64) -> Result<Self, TimingError> {
        Ok(Latency::Normal {
            mean: finite_nonneg("'mean' of a normal latency", mean)?,
            std: finite_nonneg("'std' of a normal latency", std)?,
        })
    }

    /// Log-normal: `exp(N(mu, sigma))` s (`mu` finite, `sigma` finite and non-negative).
    pub fn lognormal(mu: f64, sigma: f64) -> Result<Self, TimingError> {
        if !mu.is_finite() {
            return Err(TimingError::new(format!(
                "'mu' of a lognormal latency must be a finite number, got {mu}"
            )));
        }
        Ok(Latency::LogNormal {
            mu,
            sigma: finite_nonneg("'sigma' of a lognormal latency", sigma)?,
        })
    }

    /// One draw, in seconds (never negative).
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        let x = match *self {
            Latency::Fixed(s) => s,
            Latency::Uniform { low, high } => {
                if high > low {
                    rng.random_range(low..=high)
                } else {
                    low
                }
            }
            // The parameters were checked by the constructors.
            Latency::Normal { mean, std } => Normal::new(mean, std).map_or(mean, |d| d.sample(rng)),
            Latency::LogNormal { mu, sigma } => {
                LogNormal::new(mu, sigma).map_or(mu.exp(), |d| d.sample(rng))
            }
        };
        if x.is_finite() {
            x.max(0.0)
        } else {
            0.0
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Fixed(s) => write!(f, "fixed {s} s"),
            Latency::Uniform { low, high } => write!(f, "uniform [{low}, {high}] s"),
            Latency::Normal { mean, std } => write!(f, "normal mean {mean} s, std {std} s"),
            Latency::LogNormal { mu, sigma } => write!(f, "lognormal mu {mu}, sigma {sigma}"),
        }
    }
}

/// A fault that struck one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The set or trigger's status fails.
    Fails,
    /// The set or trigger's status never completes (its timeout, or the
    /// wait's, fails it; without one the plan waits forever, as Bluesky would).
    NeverCompletes,
    /// The device stops answering: this request and every later one get no
    /// reply (the engine's request timeout fails the message).
    StopsAnswering,
}

/// How often each fault strikes: probabilities in `[0, 1]`.
///
/// ```
/// use skyrun_actors::sim::Faults;
/// let f = Faults::none().set_fails(0.01).unwrap().never_completes(0.001).unwrap();
/// assert!(!f.is_none());
/// assert_eq!(Faults::none().set_fails(1.5).unwrap_err().to_string(),
///     "the rate of 'set_fails' must be a probability in [0, 1], got 1.5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    set_fails: f64,
    trigger_fails: f64,
    never_completes: f64,
    stops_answering: f64,
}

fn rate(what: &str, p: f64) -> Result<f64, TimingError> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(TimingError::new(format!(
            "the rate of '{what}' must be a probability in [0, 1], got {p}"
        )))
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Whether no fault can strike.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }

    /// Each set's status fails with probability `p`.
    pub fn set_fails(mut self, p: f64) -> Result<Self, TimingError> {
        self.set_fails = rate("set_fails", p)?;
        self.check_sum()
    }

    /// Each trigger's status fails with probability `p`.
    pub fn trigger_fails(mut self, p: f64) -> Result<Self, TimingError> {
        self.trigger_fails = rate("trigger_fails", p)?;
        self.check_sum()
    }

    /// Each set's or trigger's status never completes with probability `p`.
    pub fn never_completes(mut self, p: f64) -> Result<Self, TimingError> {
        self.never_completes = rate("never_completes", p)?;
        self.check_sum()
    }

    /// At each read, trigger, set or stage, the device stops answering for
    /// good with probability `p`.
    pub fn stops_answering(mut self, p: f64) -> Result<Self, TimingError> {
        self.stops_answering = rate("stops_answering", p)?;
        Ok(self)
    }

    /// The rate of "never completes".
    pub fn never_completes_rate(&self) -> f64 {
        self.never_completes
    }

    fn fails(&self, op: TimedOp) -> f64 {
        match op {
            TimedOp::Set => self.set_fails,
            TimedOp::Trigger => self.trigger_fails,
            _ => 0.0,
        }
    }

    fn check_sum(self) -> Result<Self, TimingError> {
        for (what, p) in [
            ("set_fails", self.set_fails),
            ("trigger_fails", self.trigger_fails),
        ] {
            if p + self.never_completes > 1.0 {
                return Err(TimingError::new(format!(
                    "'{what}' ({p}) and 'never_completes' ({}) add up to more than 1",
                    self.never_completes
                )));
            }
        }
        Ok(self)
    }
}

/// A device's timing model: a latency per operation, fault rates, and the
/// random stream they are drawn from.
///
/// Build it with [`Timing::seeded`] (replayable) or [`Timing::unseeded`]
/// (different draws every run), then hand it to a simulated device
/// (`SynAxis::with_timing`, ...), which [binds](Timing::bind) it to its
/// name: each device draws from its own stream, seeded from the seed and
/// the name.
#[derive(Debug, Clone)]
pub struct Timing {
    latency: [Option<Latency>; 4],
    faults: Faults,
    seed: Option<u64>,
    rng: StdRng,
    mute: bool,
}

impl Default for Timing {
    /// No latency, no faults, seed 0.
    fn default() -> Self {
        Timing::seeded(0)
    }
}

/// FNV-1a: a hash of the device name that is the same on every platform
/// and Rust version (std's hasher promises neither).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The seed of `name`'s own stream under file seed `seed`, with `salt`
/// separating the streams of one device (timing, noise).
pub(crate) fn stream_seed(seed: u64, name: &str, salt: u64) -> u64 {
    seed.rotate_left(17) ^ fnv1a(name) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A random stream of `name` under `seed` (`None`: from the OS).
pub(crate) fn device_rng(seed: Option<u64>, name: &str, salt: u64) -> StdRng {
    match seed {
        Some(s) => StdRng::seed_from_u64(stream_seed(s, name, salt)),
        None => StdRng::from_os_rng(),
    }
}

impl Timing {
    /// No latency and no faults, drawing from `seed` (replayable).
    pub fn seeded(seed: u64) -> Self {
        Timing {
            latency: [None; 4],
            faults: Faults::none(),
            seed: Some(seed),
            rng: StdRng::seed_from_u64(seed),
            mute: false,
        }
    }

    /// No latency and no faults, drawing from the OS's randomness (not replayable).
    pub fn unseeded() -> Self {
        Timing {
            seed: None,
            rng: StdRng::from_os_rng(),
            ..Timing::seeded(0)
        }
    }

    /// `op` takes a duration drawn from `latency`.
    pub fn with_latency(mut self, op: TimedOp, latency: Latency) -> Self {
        self.latency[op.index()] = Some(latency);
        self
    }

    /// Faults strike at `faults`' rates.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The seed, if replayable.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The latency of `op`, if modelled.
    pub fn latency_of(&self, op: TimedOp) -> Option<Latency> {
        self.latency[op.index()]
    }

    /// The fault rates.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// Whether nothing is modelled (every draw would be zero, no fault).
    pub fn is_ideal(&self) -> bool {
        self.latency.iter().all(Option::is_none) && self.faults.is_none()
    }

    /// Restarts the random stream as the one of device `name` (done by the
    /// device that takes this timing).
    pub fn bind(&mut self, name: &str) {
        self.rng = device_rng(self.seed, name, 0);
        self.mute = false;
    }

    /// Draws the latency of `op`, in seconds (0 when not modelled, without a draw).
    pub fn latency(&mut self, op: TimedOp) -> f64 {
        match self.latency[op.index()] {
            Some(l) => l.sample(&mut self.rng),
            None => 0.0,
        }
    }

    /// Draws the latency of `op` as a duration.
    pub fn delay(&mut self, op: TimedOp) -> Duration {
        Duration::from_secs_f64(self.latency(op))
    }

    /// Draws whether a fault strikes this `set` or `trigger` ([`Fault::Fails`]
    /// or [`Fault::NeverCompletes`]); one draw when either rate is non-zero.
    pub fn fault(&mut self, op: TimedOp) -> Option<Fault> {
        let (fails, hangs) = (self.faults.fails(op), self.faults.never_completes);
        if !matches!(op, TimedOp::Set | TimedOp::Trigger) || fails + hangs <= 0.0 {
            return None;
        }
        let u: f64 = self.rng.random();
        if u < fails {
            Some(Fault::Fails)
        } else if u < fails + hangs {
            Some(Fault::NeverCompletes)
        } else {
            None
        }
    }

    /// Whether the device answers this request to `op`: once it has stopped
    /// answering (drawn at the `stops_answering` rate at each modelled
    /// request), it never answers again.
    pub fn answers(&mut self, op: TimedOp) -> bool {
        if self.mute {
            return false;
        }
        let p = self.faults.stops_answering;
        if p > 0.0 && self.rng.random::<f64>() < p {
            self.mute = true;
        }
        let _ = op;
        !self.mute
    }

    /// Whether the device has stopped answering.
    pub fn is_mute(&self) -> bool {
        self.mute
    }
}

/// The timing of a detector's acquisition: exposure, readout and the dead
/// time before the next acquisition can start.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Acquisition {
    /// Seconds of exposure per trigger.
    pub exposure: f64,
    /// Seconds to read the data out after the exposure.
    pub readout: f64,
    /// Seconds after an acquisition ends before the next can start.
    pub dead_time: f64,
}

/// The duration of a move of `distance` at top speed `velocity` and
/// `acceleration` (a trapezoid profile: accelerate, cruise, decelerate; a
/// triangle when the move is too short to reach top speed). Without an
/// acceleration the speed is reached at once.
///
/// ```
/// use skyrun_actors::sim::move_duration;
/// assert_eq!(move_duration(10.0, 2.0, None), 5.0);
/// // 1 s to reach 2 units/s at 2 units/s², 1 unit each way, 8 units cruising: 1 + 4 + 1 s.
/// assert_eq!(move_duration(10.0, 2.0, Some(2.0)), 6.0);
/// // Too short to reach top speed: a triangle, 2 * sqrt(d / a).
/// assert_eq!(move_duration(0.5, 2.0, Some(2.0)), 1.0);
/// ```
pub fn move_duration(distance: f64, velocity: f64, acceleration: Option<f64>) -> f64 {
    let d = distance.abs();
    if d == 0.0 || velocity <= 0.0 {
        return 0.0;
    }
    match acceleration.filter(|a| *a > 0.0 && a.is_finite()) {
        None => d / velocity,
        Some(a) => {
            let ramp = velocity * velocity / a; // distance of both ramps together
            if d >= ramp {
                2.0 * velocity / a + (d - ramp) / velocity
            } else {
                2.0 * (d / a).sqrt()
            }
        }
    }
}

/// How far along a trapezoid move of `distance` (as a fraction in `[0, 1]`)
/// the motor is `t` seconds after it started.
pub(crate) fn move_fraction(
    t: f64,
    distance: f64,
    velocity: f64,
    acceleration: Option<f64>,
) -> f64 {
    let d = distance.abs();
    let total = move_duration(d, velocity, acceleration);
    if total <= 0.0 || t >= total {
        return 1.0;
    }
    if t <= 0.0 {
        return 0.0;
    }
    let covered = match acceleration.filter(|a| *a > 0.0 && a.is_finite()) {
        None => velocity * t,
        Some(a) => {
            // Peak speed: the top speed, or less on a triangle.
            let vp = velocity.min((d * a).sqrt());
            let tr = vp / a;
            if t < tr {
                0.5 * a * t * t
            } else if t <= total - tr {
                0.5 * a * tr * tr + vp * (t - tr)
            } else {
                let left = total - t;
                d - 0.5 * a * left * left
            }
        }
    };
    (covered / d).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_positions_are_continuous_and_end_at_the_target() {
        let (d, v, a) = (10.0, 2.0, Some(2.0));
        assert_eq!(move_fraction(0.0, d, v, a), 0.0);
        assert!((move_fraction(1.0, d, v, a) - 0.1).abs() < 1e-12); // 1 unit after the ramp
        assert!((move_fraction(3.0, d, v, a) - 0.5).abs() < 1e-12);
        assert!((move_fraction(5.0, d, v, a) - 0.9).abs() < 1e-12);
        assert_eq!(move_fraction(6.0, d, v, a), 1.0);
        // Triangle: half way at half time.
        assert!((move_fraction(0.5, 0.5, 2.0, Some(2.0)) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn each_distribution_replays_from_its_seed() {
        for l in [
            Latency::fixed(0.1).unwrap(),
            Latency::uniform(0.1, 0.2).unwrap(),
            Latency::normal(0.1, 0.05).unwrap(),
            Latency::lognormal(-3.0, 0.7).unwrap(),
        ] {
            let draw = |seed| {
                let mut t = Timing::seeded(seed).with_latency(TimedOp::Read, l);
                t.bind("det");
                (0..20)
                    .map(|_| t.latency(TimedOp::Read))
                    .collect::<Vec<_>>()
            };
            assert_eq!(draw(42), draw(42), "{l}");
            assert!(draw(42).iter().all(|x| *x >= 0.0), "{l}");
            if !matches!(l, Latency::Fixed(_)) {
                assert_ne!(draw(42), draw(43), "{l} depends on the seed");
            }
        }
    }

    #[test]
    fn streams_differ_per_device() {
        let l = Latency::uniform(0.0, 1.0).unwrap();
        let mut a = Timing::seeded(42).with_latency(TimedOp::Set, l);
        let mut b = a.clone();
        a.bind("m1");
        b.bind("m2");
        assert_ne!(a.latency(TimedOp::Set), b.latency(TimedOp::Set));
    }
}
