//! The engine core as plans see it: a cheap handle on the engine's thread,
//! through which a plan's messages reach the engine loop.

use std::rc::Rc;

use opentelemetry::Context;

use super::core::EngineCore;

#[derive(Clone)]
pub(crate) struct CoreHandle(Rc<EngineCore>);

impl CoreHandle {
    pub fn new(core: Rc<EngineCore>) -> Self {
        CoreHandle(core)
    }

    /// The engine core (plans await its `send` directly: one future layer less).
    #[inline]
    pub fn core(&self) -> &Rc<EngineCore> {
        &self.0
    }

    pub fn start_span(&self, name: String, cx: &Context) -> Option<skyrun_actors::ActiveSpan> {
        let parent = self.0.span_parent(cx, None);
        self.0.tracer().start(name, &parent, Vec::new())
    }
}
