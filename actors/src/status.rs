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
//! [`PendingSpan`] instead of a live SDK span. A status dropped before it
//! completes records nothing, as in ophyd, where such a span is never ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{Span, Status as SpanStatus};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use parking_lot::Mutex;

use crate::error::StatusError;
use crate::reading::epoch_secs;
use crate::tracer::SpanTracer;

/// The name of the span a status records, as ophyd names it.
pub const STATUS_SPAN_NAME: &str = "Ophyd Status";

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
    /// When the move finished (`finish_time`), which also ends the span when no settling follows.
    finished_at: Option<SystemTime>,
}

/// The "Ophyd Status" span of a status that has not completed yet: what it
/// needs to be recorded when the status completes.
struct PendingSpan {
    tracer: SpanTracer,
    parent: Context,
    attributes: Vec<KeyValue>,
    start: SystemTime,
}

impl PendingSpan {
    /// Records the span: `object_repr` (and `exception` on failure) join the
    /// buffered attributes; it ends at `end`, or now.
    fn record(mut self, repr: String, outcome: &StatusResult, end: Option<SystemTime>) {
        self.attributes.push(KeyValue::new("object_repr", repr));
        if let Err(e) = outcome {
            self.attributes
                .push(KeyValue::new("exception", e.to_string()));
        }
        let Some(mut span) = self.tracer.start_at(
            STATUS_SPAN_NAME,
            &self.parent,
            self.attributes,
            Some(self.start),
        ) else {
            return;
        };
        if let Err(e) = outcome {
            span.record_error(e);
            span.set_status(SpanStatus::error(format!("{}: {e}", error_type(e))));
        }
        match end {
            Some(t) => span.end_with_timestamp(t),
            None => span.end(),
        }
    }
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}

/// Builds a [`Status`]: its kind, timing and the span it records.
///
/// ```
/// use skyrun_actors::Status;
/// let s = Status::builder().status_type("DeviceStatus").device("det", "SynGauss").build();
/// assert_eq!(s.status_type(), "DeviceStatus");
/// assert!(s.repr().starts_with("DeviceStatus(device=det, done=False"));
/// ```
#[must_use]
pub struct StatusBuilder {
    status_type: &'static str,
    settle_time: f64,
    timeout: Option<f64>,
    label: Option<Arc<str>>,
    device_type: Option<&'static str>,
    parent: Option<Context>,
    tracer: Option<SpanTracer>,
    attributes: Vec<KeyValue>,
    start: Option<SystemTime>,
}

impl Status {
    /// A builder for a pending status, untraced until given a tracer.
    pub fn builder() -> StatusBuilder {
        StatusBuilder {
            status_type: "Status",
            settle_time: 0.0,
            timeout: None,
            label: None,
            device_type: None,
            parent: None,
            tracer: None,
            attributes: Vec::new(),
            start: None,
        }
    }

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
            span.attributes.push(kv);
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
            let finished_at = match (self.inner.settle_time > 0.0, &outcome) {
                (false, Ok(())) => st.finished_at.take(),
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
            span.record(repr, &outcome, finished_at);
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

fn error_type(e: &StatusError) -> &'static str {
    match e {
        StatusError::Timeout { .. } => "StatusTimeoutError",
        StatusError::Stopped { .. } => "StatusStopped",
        StatusError::Abandoned(_) => "StatusAbandoned",
        StatusError::Failed(_) => "StatusFailed",
    }
}

/// status_type, settle_time, timeout (or no_timeout_given), device_name, device_type.
const LEADING_ATTRIBUTES: usize = 5;
/// The leading attributes, a MoveStatus's seven, and the three recorded at
/// completion (finish_time, finish_pos, object_repr). A failure's `exception`
/// grows the `Vec` once, off the hot path.
const SPAN_ATTRIBUTES_CAPACITY: usize = LEADING_ATTRIBUTES + 7 + 3;

impl StatusBuilder {
    /// The ophyd class name to report in `status_type` (default `Status`).
    pub fn status_type(mut self, t: &'static str) -> Self {
        self.status_type = t;
        self
    }

    /// Seconds to wait after success before completing (default 0).
    pub fn settle_time(mut self, secs: f64) -> Self {
        self.settle_time = if secs.is_finite() && secs > 0.0 {
            secs
        } else {
            0.0
        };
        self
    }

    /// Fail with [`StatusError::Timeout`] if not complete after `secs`.
    pub fn timeout(mut self, secs: Option<f64>) -> Self {
        self.timeout = secs.filter(|s| s.is_finite() && *s >= 0.0);
        self
    }

    /// The device this status belongs to: sets `device_name`/`device_type`.
    pub fn device(mut self, name: impl Into<Arc<str>>, type_name: &'static str) -> Self {
        self.label = Some(name.into());
        self.device_type = Some(type_name);
        self
    }

    /// Records the span with `tracer`, as a child of the span in `parent`.
    pub fn traced(mut self, tracer: &SpanTracer, parent: &Context) -> Self {
        if tracer.is_enabled() {
            self.tracer = Some(tracer.clone());
            self.parent = Some(parent.clone());
            // One allocation for every attribute the span will ever hold: the
            // SDK keeps this Vec. The leading attributes (status_type ..
            // device_type) are filled in by `build`, once their values are known.
            let mut attrs = Vec::with_capacity(SPAN_ATTRIBUTES_CAPACITY);
            attrs.extend((0..LEADING_ATTRIBUTES).map(|_| KeyValue::new("", false)));
            attrs.append(&mut self.attributes);
            self.attributes = attrs;
        }
        self
    }

    /// Starts the span at `t` (default: when built), so a `start_time`
    /// attribute and the span can share one clock reading.
    pub fn start_at(mut self, t: SystemTime) -> Self {
        self.start = Some(t);
        self
    }

    /// An extra span attribute (e.g. a MoveStatus's `target`).
    pub fn attribute(self, key: &'static str, value: impl Into<Value>) -> Self {
        self.attributes([KeyValue::new(key, value)])
    }

    /// Extra span attributes, in order (one call, so the builder is not moved per attribute).
    /// Ignored when the status is not traced.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use skyrun_actors::{SpanTracer, Status};
    /// let s = Status::builder()
    ///     .traced(&SpanTracer::disabled(), &opentelemetry::Context::new())
    ///     .attributes([KeyValue::new("target", 1.0)])
    ///     .build();
    /// assert!(!s.is_traced());
    /// ```
    pub fn attributes(mut self, kvs: impl IntoIterator<Item = KeyValue>) -> Self {
        if self.tracer.is_some() {
            self.attributes.extend(kvs);
        }
        self
    }

    /// Whether the status will record a span (so callers can skip building attributes).
    pub fn is_traced(&self) -> bool {
        self.tracer.is_some()
    }

    /// Creates the pending status, starting its span's and timeout's clocks.
    pub fn build(self) -> Status {
        let span = match (self.tracer, self.parent) {
            (Some(tracer), Some(parent)) => {
                let mut attrs = self.attributes;
                attrs[0] = KeyValue::new("status_type", self.status_type);
                attrs[1] = KeyValue::new("settle_time", self.settle_time);
                attrs[2] = match self.timeout {
                    Some(t) => KeyValue::new("timeout", t),
                    None => KeyValue::new("no_timeout_given", true),
                };
                match (&self.label, self.device_type) {
                    (Some(name), Some(type_name)) => {
                        attrs[3] = KeyValue::new("device_name", StringValue::from(name.clone()));
                        attrs[4] = KeyValue::new("device_type", type_name);
                    }
                    _ => {
                        attrs.drain(3..LEADING_ATTRIBUTES);
                    }
                }
                Some(PendingSpan {
                    tracer,
                    parent,
                    attributes: attrs,
                    start: self.start.unwrap_or_else(SystemTime::now),
                })
            }
            _ => None,
        };
        let status = Status {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    span,
                    ..State::default()
                }),
                status_type: self.status_type,
                settle_time: self.settle_time,
                timeout: self.timeout,
                label: self.label,
                created: Instant::now(),
            }),
        };
        if let Some(t) = self.timeout {
            let weak = Arc::downgrade(&status.inner);
            spawn_after(Duration::from_secs_f64(t), move || {
                if let Some(inner) = weak.upgrade() {
                    Status { inner }.set_exception(StatusError::Timeout { after: t });
                }
            });
        }
        status
    }
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

/// Records `finish_time` and `finish_pos` on a MoveStatus span, as ophyd does on a successful move.
pub fn record_move_finish(status: &Status, finish_pos: f64) {
    let mut st = status.inner.state.lock();
    if let Some(span) = st.span.as_mut() {
        let t = SystemTime::now();
        span.attributes.extend([
            KeyValue::new("finish_time", epoch_secs(t)),
            KeyValue::new("finish_pos", finish_pos),
        ]);
        st.finished_at = Some(t);
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
    fn a_status_without_a_device_records_only_its_own_attributes() {
        use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = SpanTracer::from_provider(&provider, "t");
        let s = Status::builder()
            .traced(&tracer, &Context::new())
            .timeout(Some(2.0))
            .build();
        s.set_finished();
        let spans = exporter.get_finished_spans().unwrap();
        let keys: Vec<&str> = spans[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(
            keys,
            ["status_type", "settle_time", "timeout", "object_repr"]
        );
        assert_eq!(spans[0].attributes[2].value, Value::F64(2.0));
    }

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
