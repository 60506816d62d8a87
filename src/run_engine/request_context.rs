//! The span context a message's device requests carry, built on first use.
//!
//! A traced message runs under its own span, and every device request it
//! makes propagates that span's context. Building that `Context` costs an
//! allocation; most messages that are traced by default (`wait`, and with
//! `trace_all_messages` also `sleep`, `checkpoint`, `create`, …) never ask a
//! device anything, so [`RequestContext`] builds it only when a request needs it.

use std::cell::OnceCell;

use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;

/// The context device requests of one message propagate.
pub(crate) struct RequestContext<'a> {
    parent: &'a Context,
    span: Option<SpanContext>,
    built: OnceCell<Context>,
}

impl<'a> RequestContext<'a> {
    /// Requests propagate `parent` as it is (the message has no span).
    pub(crate) fn of(parent: &'a Context) -> Self {
        RequestContext {
            parent,
            span: None,
            built: OnceCell::new(),
        }
    }

    /// Requests propagate `span`, a child of `parent`.
    pub(crate) fn under(parent: &'a Context, span: SpanContext) -> Self {
        RequestContext {
            parent,
            span: Some(span),
            built: OnceCell::new(),
        }
    }

    /// The context to propagate (built on the first call).
    pub(crate) fn context(&self) -> &Context {
        match &self.span {
            None => self.parent,
            Some(sc) => self
                .built
                .get_or_init(|| self.parent.with_remote_span_context(sc.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn a_request_context_propagates_its_span_or_its_parent() {
        let sc = |span: u64| {
            SpanContext::new(
                TraceId::from(7_u128),
                SpanId::from(span),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )
        };
        let parent = Context::new().with_remote_span_context(sc(1));
        let own = RequestContext::under(&parent, sc(2));
        assert_eq!(
            own.context().span().span_context().span_id(),
            SpanId::from(2)
        );
        // Built once: the same context on every call.
        assert!(std::ptr::eq(own.context(), own.context()));
        let plain = RequestContext::of(&parent);
        assert_eq!(
            plain.context().span().span_context().span_id(),
            SpanId::from(1)
        );
    }
}
