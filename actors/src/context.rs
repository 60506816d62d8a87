//! What a device sees of the request it is handling: the caller's span context
//! (for the Status span's parent) and helpers to create and complete statuses.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;

use crate::propagation::TraceCarrier;
use crate::repr::Repr;
use crate::status::{spawn_after, Movement, Status, StatusBuilder};
use crate::tracer::SpanTracer;

/// The context of one device request.
///
/// ```
/// use skyrun_actors::{DeviceContext, SpanTracer, TraceCarrier};
/// let ctx = DeviceContext::new("det", "SynGauss", SpanTracer::disabled(), TraceCarrier::empty());
/// let status = ctx.status().build();
/// assert!(status.repr().contains("device=det"));
/// ```
pub struct DeviceContext {
    repr: Arc<Repr>,
    type_name: &'static str,
    tracer: SpanTracer,
    carrier: TraceCarrier,
}

impl DeviceContext {
    /// The context of a request to device `name` carrying `carrier`.
    pub fn new(
        name: impl Into<Arc<str>>,
        type_name: &'static str,
        tracer: SpanTracer,
        carrier: TraceCarrier,
    ) -> Self {
        let name = name.into();
        let repr = Repr::new(name.clone(), &format!("{type_name}(name='{name}')"));
        Self::for_device(repr, type_name, tracer, carrier)
    }

    pub(crate) fn for_device(
        repr: Arc<Repr>,
        type_name: &'static str,
        tracer: SpanTracer,
        carrier: TraceCarrier,
    ) -> Self {
        DeviceContext {
            repr,
            type_name,
            tracer,
            carrier,
        }
    }

    /// The device name.
    pub fn name(&self) -> &str {
        self.repr.name()
    }

    /// The span context the request carried (extracted with the global propagator).
    pub fn parent(&self) -> Context {
        self.carrier.extract()
    }

    /// Whether statuses created here will record spans.
    pub fn is_traced(&self) -> bool {
        self.tracer.is_enabled()
    }

    /// A builder for a `DeviceStatus` of this device, traced as a child of the caller's span.
    pub fn status(&self) -> StatusBuilder {
        let b = Status::builder()
            .status_type("DeviceStatus")
            .device(self.repr.name().clone(), self.type_name);
        self.trace(b).attribute("kwargs", "{}")
    }

    /// A builder for a `MoveStatus` of this positioner to `target`, from `start_pos`.
    pub fn move_status(&self, target: f64, start_pos: f64, unit: &Arc<str>) -> StatusBuilder {
        let b = Status::builder()
            .status_type("MoveStatus")
            .device(self.repr.name().clone(), self.type_name);
        let b = self.trace(b);
        if !b.is_traced() {
            return b;
        }
        b.movement(Movement {
            target,
            start_pos,
            unit: unit.clone(),
            positioner_name: self.repr.name().clone(),
            positioner: self.repr.get().clone(),
        })
    }

    fn trace(&self, b: StatusBuilder) -> StatusBuilder {
        if self.tracer.is_enabled() && !self.carrier.is_empty() {
            b.traced(&self.tracer, &self.parent())
        } else {
            b.traced(&self.tracer, &Context::new())
        }
    }

    /// Runs `f` after `delay` (immediately when `delay` is zero).
    pub fn after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        if delay.is_zero() {
            f();
        } else {
            spawn_after(delay, f);
        }
    }
}
