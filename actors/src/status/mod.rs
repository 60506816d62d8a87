//! Status: the promise a device returns from `set`, `trigger`, `kickoff` and
//! `complete`, completed later by the device's actor.
//!
//! A [`Status`] is shared: the device keeps one clone to finish it, the engine
//! keeps another to wait on it. It supports success or failure with an error,
//! an optional timeout, a settle time applied after success, and callbacks run
//! on completion, like ophyd's `StatusBase`. It also owns the "Ophyd Status"
//! span, which starts when the status is created and ends when it completes
//! (after settling), with ophyd's attribute keys.
//!
//! Like ophyd, a status buffers its span's attributes and writes them when it
//! completes. The span is never current, so nothing nests under it, and
//! skyrun hands the whole span to the tracer only then, with the start time
//! taken when the status was built. The exported span is the one a span
//! opened at construction would give, but a pending status carries a small
//! `PendingSpan` instead of a live SDK span. A status dropped before it
//! completes records nothing, as in ophyd, where such a span is never ended.

mod builder;
mod span;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use parking_lot::Mutex;

use crate::error::StatusError;
use span::PendingSpan;

pub use builder::StatusBuilder;
pub(crate) use span::Movement;
pub use span::{record_move_finish, STATUS_SPAN_NAME};

/// The outcome of a completed status.
pub type StatusResult = Result<(), StatusError>;

type Callback = Box<dyn FnOnce(&StatusResult) + Send>;

/// A shared, completable promise of a device operation.
///
/// ```
/// use skyrun_actors::{Status, StatusError};
/// # actix_rt::System::new().block_on(async {
/// let status = Status::builder().build();
/// let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
/// let s2 = seen.clone();
/// status.add_callback(move |r| s2.store(r.is_ok(), std::sync::atomic::Ordering::SeqCst));
/// assert!(!status.done());
/// status.set_finished();
/// assert_eq!(status.wait().await, Ok(()));
/// assert!(seen.load(std::sync::atomic::Ordering::SeqCst));
///
/// let failing = Status::builder().build();
/// failing.set_exception(StatusError::Failed("limit switch".into()));
/// assert_eq!(failing.wait().await.unwrap_err().to_string(), "limit switch");
/// # });
/// ```
#[derive(Clone)]
pub struct Status {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    status_type: &'static str,
    settle_time: f64,
    timeout: Option<f64>,
    label: Option<Arc<str>>,
    device_type: Option<&'static str>,
    created: Instant,
}

#[derive(Default)]
struct State {
    settling: bool,
    outcome: Option<StatusResult>,
    elapsed: f64,
    callbacks: Vec<Callback>,
    wakers: Vec<Waker>,
    span: Option<PendingSpan>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}

impl Status {
    /// A status that has already succeeded (no span).
    pub fn finished() -> Self {
        let s = Status::builder().build();
        s.set_finished();
        s
    }

    /// The ophyd class name this status mirrors (`Status`, `DeviceStatus`, `MoveStatus`, ...).
    pub fn status_type(&self) -> &'static str {
        self.inner.status_type
    }

    /// Whether the status has completed (success or failure).
    pub fn done(&self) -> bool {
        self.inner.state.lock().outcome.is_some()
    }

    /// Whether the status completed successfully (false while pending).
    pub fn success(&self) -> bool {
        matches!(self.inner.state.lock().outcome, Some(Ok(())))
    }

    /// The outcome, once complete.
    pub fn result(&self) -> Option<StatusResult> {
        self.inner.state.lock().outcome.clone()
    }

    /// The timeout the status was created with, in seconds.
    pub fn timeout(&self) -> Option<f64> {
        self.inner.timeout
    }

    /// The settle time applied after success, in seconds.
    pub fn settle_time(&self) -> f64 {
        self.inner.settle_time
    }

    /// Whether two handles are the same status.
    pub fn same_as(&self, other: &Status) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Marks the operation successful. With a settle time, completion (and the
    /// callbacks) follow after it. Returns `false` if the status had already
    /// completed or was already settling.
    pub fn set_finished(&self) -> bool {
        if self.inner.settle_time > 0.0 {
            {
                let mut st = self.inner.state.lock();
                if st.outcome.is_some() || st.settling {
                    return false;
                }
                st.settling = true;
            }
            let weak = Arc::downgrade(&self.inner);
            spawn_after(Duration::from_secs_f64(self.inner.settle_time), move || {
                if let Some(inner) = weak.upgrade() {
                    Status { inner }.complete(Ok(()));
                }
            });
            true
        } else {
            self.complete(Ok(()))
        }
    }

    /// Marks the operation failed with `error`. Returns `false` if the status
    /// had already completed.
    pub fn set_exception(&self, error: StatusError) -> bool {
        self.complete(Err(error))
    }

    /// Runs `callback` with the outcome once the status completes (at once if it has).
    pub fn add_callback(&self, callback: impl FnOnce(&StatusResult) + Send + 'static) {
        let mut st = self.inner.state.lock();
        match &st.outcome {
            Some(outcome) => {
                let outcome = outcome.clone();
                drop(st);
                callback(&outcome);
            }
            None => st.callbacks.push(Box::new(callback)),
        }
    }

    /// Records an extra attribute on the status span (a no-op when untraced
    /// or once the status has completed).
    pub fn set_attribute(&self, kv: KeyValue) {
        if let Some(span) = self.inner.state.lock().span.as_mut() {
            span.extra.push(kv);
        }
    }

    /// Records a span event named `name`, timestamped now, on the status
    /// span (a no-op when untraced or once the status has completed): where
    /// the time of an operation went (a motor's put, its DMOV 0 and DMOV 1).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// let s = skyrun_actors::Status::builder().build();
    /// s.add_event("put", vec![KeyValue::new("pv", "BL:M1.VAL")]);
    /// assert!(!s.is_traced());
    /// ```
    pub fn add_event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        if let Some(span) = self.inner.state.lock().span.as_mut() {
            span.events
                .push((name, std::time::SystemTime::now(), attributes));
        }
    }

    /// Whether this status will record a span when it completes (the
    /// provider's sampler still has the last word).
    pub fn is_traced(&self) -> bool {
        self.inner.state.lock().span.is_some()
    }

    /// Waits for completion; resolves with the outcome.
    pub fn wait(&self) -> StatusWait {
        StatusWait {
            status: self.clone(),
        }
    }

    /// ophyd's `repr`, with the current `done`/`success` (ophyd always says `done=False`).
    pub fn repr(&self) -> String {
        let st = self.inner.state.lock();
        self.repr_locked(&st)
    }

    fn repr_locked(&self, st: &State) -> String {
        thread_local! {
            // Written into a reused buffer, then copied out at its exact size:
            // the span keeps the text as a boxed `str`, so a String with spare
            // capacity would be reallocated on the way in.
            static SCRATCH: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(128));
        }
        SCRATCH.with_borrow_mut(|r| {
            r.clear();
            self.write_repr(st, r);
            r.as_str().to_owned()
        })
    }

    fn write_repr(&self, st: &State, r: &mut String) {
        let done = if st.outcome.is_some() {
            "True"
        } else {
            "False"
        };
        let success = if matches!(st.outcome, Some(Ok(()))) {
            "True"
        } else {
            "False"
        };
        let label = self.inner.label.as_deref().unwrap_or("None");
        // Built by hand: this runs for every traced status, and `{:.1}` float
        // formatting costs more than the rest of the span's attributes.
        match self.inner.status_type {
            "MoveStatus" => {
                r.push_str("MoveStatus(done=");
                r.push_str(done);
                r.push_str(", pos=");
                r.push_str(label);
                r.push_str(", elapsed=");
                push_tenths(r, st.elapsed);
                r.push_str(", success=");
                r.push_str(success);
                r.push_str(", settle_time=");
                push_tenths(r, self.inner.settle_time);
                r.push(')');
            }
            other => {
                // ophyd's DeviceStatus names its device `device`; the others say `obj`.
                let field = if other == "DeviceStatus" {
                    "(device="
                } else {
                    "(obj="
                };
                for part in [
                    other,
                    field,
                    label,
                    ", done=",
                    done,
                    ", success=",
                    success,
                    ")",
                ] {
                    r.push_str(part);
                }
            }
        }
    }

    fn complete(&self, outcome: StatusResult) -> bool {
        let (callbacks, wakers, span) = {
            let mut st = self.inner.state.lock();
            if st.outcome.is_some() {
                return false;
            }
            st.elapsed = self.inner.created.elapsed().as_secs_f64();
            st.outcome = Some(outcome.clone());
            // Completing right after the move finished (no settling): the span
            // ends at `finish_time`, one clock reading instead of two.
            let finished_at = match (self.inner.settle_time > 0.0, &outcome, &st.span) {
                (false, Ok(()), Some(span)) => span.finish.map(|(t, _)| t),
                _ => None,
            };
            let span = st
                .span
                .take()
                .map(|span| (span, self.repr_locked(&st), finished_at));
            (
                std::mem::take(&mut st.callbacks),
                std::mem::take(&mut st.wakers),
                span,
            )
        };
        if let Some((span, repr, finished_at)) = span {
            span.record(&self.inner, repr, &outcome, finished_at);
        }
        for cb in callbacks {
            cb(&outcome);
        }
        for w in wakers {
            w.wake();
        }
        true
    }
}

/// Appends `x` with one decimal, as `{:.1}` would for the small, non-negative
/// durations a status reports.
fn push_tenths(out: &mut String, x: f64) {
    use std::fmt::Write;
    let tenths = (x * 10.0).round();
    if !(0.0..1e15).contains(&tenths) {
        let _ = write!(out, "{x:.1}");
        return;
    }
    let t = tenths as u64;
    out.push_str(itoa::Buffer::new().format(t / 10));
    out.push('.');
    out.push(char::from(b'0' + (t % 10) as u8));
}

/// Runs `f` after `delay` on the current tokio runtime (a helper thread outside one).
pub(crate) fn spawn_after(delay: Duration, f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                tokio::time::sleep(delay).await;
                f();
            });
        }
        Err(_) => {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                f();
            });
        }
    }
}

/// The future returned by [`Status::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct StatusWait {
    status: Status,
}

impl Future for StatusWait {
    type Output = StatusResult;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<StatusResult> {
        let mut st = self.status.inner.state.lock();
        if let Some(outcome) = &st.outcome {
            return Poll::Ready(outcome.clone());
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_match_float_formatting() {
        for x in [0.0, 0.04, 0.05, 0.96, 1.25, 12.34, 3600.0, 1e20, -0.5] {
            let mut s = String::new();
            push_tenths(&mut s, x);
            let expected = format!("{x:.1}");
            // Half-way cases may round either way in the last digit.
            let (a, b): (f64, f64) = (s.parse().unwrap(), expected.parse().unwrap());
            assert!((a - b).abs() <= 0.1 + 1e-9, "{x}: {s} vs {expected}");
        }
    }
}
