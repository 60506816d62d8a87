//! The engine core as plans see it: a cheap handle on the engine's thread,
//! through which a plan's messages reach the engine loop.

use std::rc::Rc;

use opentelemetry::Context;

use super::core::EngineCore;
use crate::error::PlanError;
use crate::msg::Msg;
use crate::reply::Reply;

#[derive(Clone)]
pub(crate) struct CoreHandle(Rc<EngineCore>);

impl CoreHandle {
    pub fn new(core: Rc<EngineCore>) -> Self {
        CoreHandle(core)
    }

    pub async fn send(&self, msg: Msg) -> Result<Reply, PlanError> {
        self.0.send(msg).await
    }

    pub fn start_span(&self, name: String, cx: &Context) -> Option<skyrun_actors::ActiveSpan> {
        let parent = self.0.span_parent(cx, None);
        self.0.tracer().start(name, &parent, Vec::new())
    }
}
