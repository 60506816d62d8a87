//! The "Ophyd Status" span of a status, recorded when the status completes.
//!
//! ophyd buffers a status's span attributes and writes them in
//! `set_finished()`/`set_exception()`; the span is never made current, so
//! nothing nests under it. skyrun keeps the same buffer in a [`PendingSpan`]
//! and hands the whole span to the tracer at completion, with the start time
//! taken when the status was built.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Span, Status as SpanStatus};
use opentelemetry::{Context, KeyValue, StringValue};

use super::{Inner, Status, StatusResult};
use crate::error::StatusError;
use crate::reading::epoch_secs;
use crate::tracer::SpanTracer;

/// The name of the span a status records, as ophyd names it.
pub const STATUS_SPAN_NAME: &str = "Ophyd Status";

/// The "Ophyd Status" span of a status that has not completed yet: what it
/// needs to be recorded when the status completes. The status's own keys
/// (`status_type`, `settle_time`, ...) come from the status itself; the
/// attributes are written once, at their final size, when it completes.
pub(super) struct PendingSpan {
    pub(super) tracer: SpanTracer,
    pub(super) parent: Context,
    /// When the span starts (set by `StatusBuilder::build`).
    pub(super) start: SystemTime,
    /// A MoveStatus's move.
    pub(super) movement: Option<Movement>,
    /// A MoveStatus's `finish_time` and `finish_pos`, once the move finished.
    pub(super) finish: Option<(SystemTime, f64)>,
    /// Attributes the device added, in order.
    pub(super) extra: Vec<KeyValue>,
    /// Span events the device added (name, when, attributes), in order.
    pub(super) events: Vec<(&'static str, SystemTime, Vec<KeyValue>)>,
}

/// What a MoveStatus records beyond a status's own keys, as ophyd's
/// `MoveStatus` does: `target`, `start_time` (the span's start), `start_pos`,
/// `unit`, `positioner_name` and `positioner`.
pub(crate) struct Movement {
    pub(crate) target: f64,
    pub(crate) start_pos: f64,
    pub(crate) unit: Arc<str>,
    pub(crate) positioner_name: Arc<str>,
    pub(crate) positioner: Arc<str>,
}

impl PendingSpan {
    pub(super) fn new(tracer: SpanTracer, parent: Context) -> Self {
        PendingSpan {
            tracer,
            parent,
            start: SystemTime::UNIX_EPOCH,
            movement: None,
            finish: None,
            extra: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Records the span of the status `inner` describes, which completed with
    /// `outcome` and shows as `repr`; it ends at `end`, or now.
    pub(super) fn record(
        self,
        inner: &Inner,
        repr: String,
        outcome: &StatusResult,
        end: Option<SystemTime>,
    ) {
        let device = inner.label.as_ref().zip(inner.device_type);
        let mut attrs = Vec::with_capacity(
            3 + 2 * usize::from(device.is_some())
                + 7 * usize::from(self.movement.is_some())
                + self.extra.len()
                + 2 * usize::from(self.finish.is_some())
                + 1
                + usize::from(outcome.is_err()),
        );
        // One `push` each (not `extend` of an array): each attribute is
        // written straight into the `Vec`, not built in a temporary and copied.
        attrs.push(KeyValue::new("status_type", inner.status_type));
        attrs.push(KeyValue::new("settle_time", inner.settle_time));
        attrs.push(match inner.timeout {
            Some(t) => KeyValue::new("timeout", t),
            None => KeyValue::new("no_timeout_given", true),
        });
        if let Some((name, type_name)) = device {
            attrs.push(KeyValue::new(
                "device_name",
                StringValue::from(name.clone()),
            ));
            attrs.push(KeyValue::new("device_type", type_name));
        }
        if let Some(m) = self.movement {
            attrs.push(KeyValue::new("kwargs", "{}"));
            attrs.push(KeyValue::new("target", m.target));
            attrs.push(KeyValue::new("start_time", epoch_secs(self.start)));
            attrs.push(KeyValue::new("start_pos", m.start_pos));
            attrs.push(KeyValue::new("unit", StringValue::from(m.unit)));
            attrs.push(KeyValue::new(
                "positioner_name",
                StringValue::from(m.positioner_name),
            ));
            attrs.push(KeyValue::new("positioner", StringValue::from(m.positioner)));
        }
        attrs.extend(self.extra);
        if let Some((t, pos)) = self.finish {
            attrs.push(KeyValue::new("finish_time", epoch_secs(t)));
            attrs.push(KeyValue::new("finish_pos", pos));
        }
        attrs.push(KeyValue::new("object_repr", repr));
        if let Err(e) = outcome {
            attrs.push(KeyValue::new("exception", e.to_string()));
        }
        let Some(mut span) =
            self.tracer
                .start_at(STATUS_SPAN_NAME, &self.parent, attrs, Some(self.start))
        else {
            return;
        };
        for (name, t, attrs) in self.events {
            span.add_event_with_timestamp(name, t, attrs);
        }
        if let Err(e) = outcome {
            crate::tracer::record_exception(&mut span, error_type(e), e.to_string(), false);
            span.set_status(SpanStatus::error(format!("{}: {e}", error_type(e))));
        }
        match end {
            Some(t) => span.end_with_timestamp(t),
            None => span.end(),
        }
    }
}

fn error_type(e: &StatusError) -> &'static str {
    match e {
        StatusError::Timeout { .. } => "StatusTimeoutError",
        StatusError::Stopped { .. } => "StatusStopped",
        StatusError::Abandoned(_) => "StatusAbandoned",
        StatusError::Failed(_) => "StatusFailed",
    }
}

/// Records `finish_time` and `finish_pos` on a MoveStatus span, as ophyd does on a successful move.
pub fn record_move_finish(status: &Status, finish_pos: f64) {
    if let Some(span) = status.inner.state.lock().span.as_mut() {
        span.finish = Some((SystemTime::now(), finish_pos));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Value;

    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    fn recorder() -> (InMemorySpanExporter, SdkTracerProvider, SpanTracer) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = SpanTracer::from_provider(&provider, "t");
        (exporter, provider, tracer)
    }

    #[test]
    fn the_span_is_recorded_at_completion_from_the_build_time() {
        let (exporter, _provider, tracer) = recorder();
        let before = SystemTime::now();
        let s = Status::builder().traced(&tracer, &Context::new()).build();
        let built = SystemTime::now();
        s.set_attribute(KeyValue::new("extra", 1_i64));
        assert!(exporter.get_finished_spans().unwrap().is_empty());
        s.set_exception(StatusError::Failed("limit switch".into()));
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.name, STATUS_SPAN_NAME);
        assert!(before <= span.start_time && span.start_time <= built);
        assert!(span.end_time >= built);
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "status_type",
                "settle_time",
                "no_timeout_given",
                "extra",
                "object_repr",
                "exception"
            ]
        );
        assert_eq!(span.status, SpanStatus::error("StatusFailed: limit switch"));
        assert_eq!(span.events.len(), 1, "the error is recorded as an event");
    }

    #[test]
    fn a_status_dropped_before_completing_records_nothing() {
        let (exporter, _provider, tracer) = recorder();
        let s = Status::builder().traced(&tracer, &Context::new()).build();
        drop(s);
        assert!(exporter.get_finished_spans().unwrap().is_empty());
    }

    #[test]
    fn a_status_without_a_device_records_only_its_own_attributes() {
        let (exporter, _provider, tracer) = recorder();
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
}
