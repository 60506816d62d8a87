//! Suspenders: Bluesky's `bluesky.suspenders` (SuspendFloor, SuspendCeil,
//! SuspendBoolHigh/Low, SuspendInBand, SuspendOutBand) in Rust, watching a
//! device's subscription.
//!
//! A [`Suspender`] installed on a RunEngine
//! ([`RunEngine::install_suspender`]) subscribes to its signal. When a
//! reading trips it (the ring current falls below the floor) while a plan
//! runs, it asks the engine for a [`Suspension`]: the plan is interrupted,
//! the pre-plan runs, and the engine waits. When a reading meets the resume
//! condition (the current is back above `resume_above`), the suspender
//! waits `sleep` seconds more and releases the suspension; the post-plan
//! runs and the plan rewinds to its last checkpoint. A reading that trips it
//! again during the sleep starts the wait over. A plan submitted while a
//! suspender is tripped starts once it is released, as Bluesky's `RE()`
//! waits. The suspension is the "Bluesky RunEngine suspend" span.
//!
//! ```
//! use skyrun::{RunEngine, Suspender};
//! use skyrun_actors::{sim::SynSignal, DeviceHandle};
//! actix::System::new().block_on(async {
//!     let re = RunEngine::new();
//!     let ring = DeviceHandle::spawn(SynSignal::new("ring_current", 400.0));
//!     let floor = Suspender::floor(&ring, 100.0, 150.0).unwrap().sleep(5.0);
//!     let id = re.install_suspender(floor).await.unwrap();
//!     assert_eq!(re.suspenders().len(), 1);
//!     assert!(!re.suspenders()[0].tripped);
//!     assert!(re.remove_suspender(id));
//! });
//! ```

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use skyrun_actors::{DeviceError, DeviceHandle, Readings};
use tokio::sync::watch;

use super::suspension::Suspension;
use super::{EngineState, RunEngine, Runnable};

/// Makes a fresh pre- or post-plan for each suspension.
type PlanFactory = Arc<dyn Fn() -> Runnable + Send + Sync>;

/// When a suspender trips and when it may release.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// Trips below `below`; may release above `resume_above` (SuspendFloor).
    Floor {
        /// The floor.
        below: f64,
        /// The value to be back above.
        resume_above: f64,
    },
    /// Trips above `above`; may release below `resume_below` (SuspendCeil).
    Ceil {
        /// The ceiling.
        above: f64,
        /// The value to be back below.
        resume_below: f64,
    },
    /// Trips when the value is true (non-zero) (SuspendBoolHigh).
    BoolHigh,
    /// Trips when the value is false (zero) (SuspendBoolLow).
    BoolLow,
    /// Trips outside `(low, high)`; releases inside (SuspendInBand).
    InBand {
        /// Bottom of the band.
        low: f64,
        /// Top of the band.
        high: f64,
    },
    /// Trips inside `(low, high)`; releases outside (SuspendOutBand).
    OutBand {
        /// Bottom of the band.
        low: f64,
        /// Top of the band.
        high: f64,
    },
}

impl Condition {
    /// Whether the thresholds make sense (a floor at or below its resume
    /// value, a band's bottom below its top); the reason if not.
    ///
    /// ```
    /// use skyrun::Condition;
    /// assert!(Condition::Floor { below: 100.0, resume_above: 150.0 }.check().is_ok());
    /// assert!(Condition::InBand { low: 2.0, high: 1.0 }.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Condition::Floor {
                below,
                resume_above,
            } if resume_above.is_nan() || below.is_nan() || resume_above < below => Err(format!(
                "the resume threshold ({resume_above}) must be at or above the suspend threshold ({below})"
            )),
            Condition::Ceil {
                above,
                resume_below,
            } if resume_below.is_nan() || above.is_nan() || resume_below > above => Err(format!(
                "the resume threshold ({resume_below}) must be at or below the suspend threshold ({above})"
            )),
            Condition::InBand { low, high } | Condition::OutBand { low, high }
                if low.is_nan() || high.is_nan() || low >= high =>
            {
                Err(format!(
                    "the bottom of the band ({low}) must be below its top ({high})"
                ))
            }
            _ => Ok(()),
        }
    }

    fn should_suspend(&self, v: f64) -> bool {
        match *self {
            Condition::Floor { below, .. } => v < below,
            Condition::Ceil { above, .. } => v > above,
            Condition::BoolHigh => v != 0.0,
            Condition::BoolLow => v == 0.0,
            Condition::InBand { low, high } => !(low < v && v < high),
            Condition::OutBand { low, high } => low < v && v < high,
        }
    }

    fn should_resume(&self, v: f64) -> bool {
        match *self {
            Condition::Floor { resume_above, .. } => v >= resume_above,
            Condition::Ceil { resume_below, .. } => v <= resume_below,
            other => !other.should_suspend(v),
        }
    }

    fn describe(&self) -> String {
        match *self {
            Condition::Floor { below, .. } => format!("is below {below}"),
            Condition::Ceil { above, .. } => format!("is above {above}"),
            Condition::BoolHigh => "is high".into(),
            Condition::BoolLow => "is low".into(),
            Condition::InBand { low, high } => format!("is outside of the range ({low}, {high})"),
            Condition::OutBand { low, high } => format!("is inside the range ({low}, {high})"),
        }
    }
}

/// A suspender that cannot be built: the thresholds make no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("suspender on '{signal}': {reason}")]
pub struct SuspenderError {
    /// The watched signal.
    pub signal: String,
    /// What is wrong.
    pub reason: String,
}

/// A condition on a signal that suspends the running plan (see the module docs).
#[derive(Clone)]
pub struct Suspender {
    signal: DeviceHandle,
    condition: Condition,
    sleep: f64,
    pre_plan: Option<PlanFactory>,
    post_plan: Option<PlanFactory>,
    tripped_message: String,
}

impl std::fmt::Debug for Suspender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suspender")
            .field("signal", &self.signal.name())
            .field("condition", &self.condition)
            .field("sleep", &self.sleep)
            .finish_non_exhaustive()
    }
}

impl Suspender {
    fn new(signal: &DeviceHandle, condition: Condition) -> Result<Self, SuspenderError> {
        condition.check().map_err(|reason| SuspenderError {
            signal: signal.name().to_owned(),
            reason,
        })?;
        Ok(Suspender {
            signal: signal.clone(),
            condition,
            sleep: 0.0,
            pre_plan: None,
            post_plan: None,
            tripped_message: String::new(),
        })
    }

    /// Suspends when `signal` falls below `below`; may resume once it is at
    /// or above `resume_above` (SuspendFloor).
    pub fn floor(
        signal: &DeviceHandle,
        below: f64,
        resume_above: f64,
    ) -> Result<Self, SuspenderError> {
        Self::new(
            signal,
            Condition::Floor {
                below,
                resume_above,
            },
        )
    }

    /// Suspends when `signal` rises above `above`; may resume once it is at
    /// or below `resume_below` (SuspendCeil).
    pub fn ceil(
        signal: &DeviceHandle,
        above: f64,
        resume_below: f64,
    ) -> Result<Self, SuspenderError> {
        Self::new(
            signal,
            Condition::Ceil {
                above,
                resume_below,
            },
        )
    }

    /// Suspends while `signal` is true (SuspendBoolHigh).
    pub fn bool_high(signal: &DeviceHandle) -> Self {
        Self::new(signal, Condition::BoolHigh).expect("no thresholds to check")
    }

    /// Suspends while `signal` is false (SuspendBoolLow).
    pub fn bool_low(signal: &DeviceHandle) -> Self {
        Self::new(signal, Condition::BoolLow).expect("no thresholds to check")
    }

    /// Suspends while `signal` is outside `(low, high)` (SuspendInBand).
    pub fn in_band(signal: &DeviceHandle, low: f64, high: f64) -> Result<Self, SuspenderError> {
        Self::new(signal, Condition::InBand { low, high })
    }

    /// Suspends while `signal` is inside `(low, high)` (SuspendOutBand).
    pub fn out_band(signal: &DeviceHandle, low: f64, high: f64) -> Result<Self, SuspenderError> {
        Self::new(signal, Condition::OutBand { low, high })
    }

    /// Waits `secs` after the resume condition is met before releasing.
    pub fn sleep(mut self, secs: f64) -> Self {
        self.sleep = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
        self
    }

    /// Runs the plan `make()` builds when the suspension starts.
    pub fn pre_plan<P: Into<Runnable>>(
        mut self,
        make: impl Fn() -> P + Send + Sync + 'static,
    ) -> Self {
        self.pre_plan = Some(Arc::new(move || make().into()));
        self
    }

    /// Runs the plan `make()` builds once released, before the rewind.
    pub fn post_plan<P: Into<Runnable>>(
        mut self,
        make: impl Fn() -> P + Send + Sync + 'static,
    ) -> Self {
        self.post_plan = Some(Arc::new(move || make().into()));
        self
    }

    /// Added to the justification (Bluesky's `tripped_message`).
    pub fn tripped_message(mut self, msg: impl Into<String>) -> Self {
        self.tripped_message = msg.into();
        self
    }

    /// The watched signal.
    pub fn signal(&self) -> &DeviceHandle {
        &self.signal
    }

    /// When it trips and releases.
    pub fn condition(&self) -> Condition {
        self.condition
    }

    fn justification(&self, v: f64) -> String {
        let j = format!(
            "Signal {} = {v} {}",
            self.signal.name(),
            self.condition.describe()
        );
        if self.tripped_message.is_empty() {
            j
        } else {
            format!("{j}: {}", self.tripped_message)
        }
    }
}

/// The number of a suspender installed on an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SuspenderId(u64);

/// An installed suspender, as [`RunEngine::suspenders`] lists it.
#[derive(Debug, Clone)]
pub struct InstalledSuspender {
    /// Its number.
    pub id: SuspenderId,
    /// The watched signal's name.
    pub signal: String,
    /// When it trips and releases.
    pub condition: Condition,
    /// Whether it is tripped now (not yet released).
    pub tripped: bool,
}

struct Installed {
    id: SuspenderId,
    suspender: Suspender,
    tripped: watch::Receiver<bool>,
    task: tokio::task::AbortHandle,
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The suspenders installed on one engine.
#[derive(Default)]
pub(crate) struct Suspenders {
    installed: Mutex<Vec<Installed>>,
    next: std::sync::atomic::AtomicU64,
}

impl Suspenders {
    /// Waits until no installed suspender is tripped.
    pub(crate) async fn ready(&self) {
        let waits: Vec<watch::Receiver<bool>> = self
            .installed
            .lock()
            .iter()
            .map(|i| i.tripped.clone())
            .collect();
        for mut rx in waits {
            let _ = rx.wait_for(|tripped| !tripped).await;
        }
    }
}

/// A reading as a number: the signal's own key (else the first), numbers
/// as they are, booleans as 0 and 1; `None` for anything else.
fn value_of(signal: &str, readings: &Readings) -> Option<f64> {
    let r = readings.get(signal).or_else(|| readings.values().next())?;
    match &r.value {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        v => v.as_f64(),
    }
}

impl RunEngine {
    /// Installs `suspender` (Bluesky's `RE.install_suspender`): it subscribes
    /// to its signal now, and suspends the plans this engine runs while it is
    /// tripped. Fails if the signal cannot be subscribed to.
    pub async fn install_suspender(
        &self,
        suspender: Suspender,
    ) -> Result<SuspenderId, DeviceError> {
        let mut sub = suspender.signal.subscribe().await?;
        let (tx, rx) = watch::channel(false);
        let set = &self.suspenders;
        let id = SuspenderId(set.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (re, s) = (self.clone(), suspender.clone());
        let task = tokio::task::spawn_local(async move {
            let tx = Arc::new(tx);
            // Bumped by every reading that trips the suspender: a release
            // waiting out its sleep goes ahead only if none came meanwhile.
            let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
            while let Some(readings) = sub.next().await {
                let Some(v) = value_of(s.signal.name(), &readings) else {
                    continue;
                };
                if s.condition.should_suspend(v) {
                    generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if !*tx.borrow() {
                        tx.send_replace(true);
                        if re.state() == EngineState::Running {
                            let _ = re.request_suspend(suspension(&s, v, &tx)).await;
                        }
                    }
                } else if *tx.borrow() && s.condition.should_resume(v) {
                    let (tx, generation) = (tx.clone(), generation.clone());
                    let seen = generation.load(std::sync::atomic::Ordering::SeqCst);
                    let sleep = Duration::from_secs_f64(s.sleep);
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(sleep).await;
                        if generation.load(std::sync::atomic::Ordering::SeqCst) == seen {
                            tx.send_replace(false);
                        }
                    });
                }
            }
        });
        set.installed.lock().push(Installed {
            id,
            suspender,
            tripped: rx,
            task: task.abort_handle(),
        });
        Ok(id)
    }

    /// Removes an installed suspender; `false` if it was not installed.
    pub fn remove_suspender(&self, id: SuspenderId) -> bool {
        let mut all = self.suspenders.installed.lock();
        let before = all.len();
        all.retain(|i| i.id != id);
        all.len() != before
    }

    /// Removes every installed suspender.
    pub fn clear_suspenders(&self) {
        self.suspenders.installed.lock().clear();
    }

    /// The installed suspenders.
    pub fn suspenders(&self) -> Vec<InstalledSuspender> {
        self.suspenders
            .installed
            .lock()
            .iter()
            .map(|i| InstalledSuspender {
                id: i.id,
                signal: i.suspender.signal.name().to_owned(),
                condition: i.suspender.condition,
                tripped: *i.tripped.borrow(),
            })
            .collect()
    }
}

/// The suspension `s` asks for when tripped at `v`: until it is released.
fn suspension(s: &Suspender, v: f64, tripped: &watch::Sender<bool>) -> Suspension {
    let mut rx = tripped.subscribe();
    let mut suspension = Suspension::until(async move {
        let _ = rx.wait_for(|tripped| !tripped).await;
    })
    .justification(s.justification(v));
    if let Some(pre) = &s.pre_plan {
        suspension = suspension.pre_plan(pre());
    }
    if let Some(post) = &s.post_plan {
        suspension = suspension.post_plan(post());
    }
    suspension
}
