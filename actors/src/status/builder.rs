//! [`StatusBuilder`]: a status's kind, timing and the span it will record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::{Context, KeyValue, Value};
use parking_lot::Mutex;

use super::span::{Movement, PendingSpan};
use super::{spawn_after, Inner, State, Status};
use crate::error::StatusError;
use crate::tracer::SpanTracer;

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
    span: Option<PendingSpan>,
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
            span: None,
            start: None,
        }
    }
}

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
            self.span = Some(PendingSpan::new(tracer.clone(), parent.clone()));
        }
        self
    }

    /// The move a MoveStatus records (`target`, `start_pos`, `unit`,
    /// `positioner_name`, `positioner`); ignored when untraced.
    pub(crate) fn movement(mut self, movement: Movement) -> Self {
        if let Some(span) = self.span.as_mut() {
            span.movement = Some(movement);
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
        if let Some(span) = self.span.as_mut() {
            span.extra.extend(kvs);
        }
        self
    }

    /// Whether the status will record a span (so callers can skip building attributes).
    pub fn is_traced(&self) -> bool {
        self.span.is_some()
    }

    /// Creates the pending status, starting its span's and timeout's clocks.
    pub fn build(self) -> Status {
        let span = self.span.map(|mut span| {
            span.start = self.start.unwrap_or_else(SystemTime::now);
            span
        });
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
                device_type: self.device_type,
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
