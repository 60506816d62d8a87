//! [`StatusBuilder`]: a status's kind, timing and the span it will record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::{Context, KeyValue, StringValue, Value};
use parking_lot::Mutex;

use super::span::PendingSpan;
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
