//! `trace_plan`: wrap a plan in a span, as `bluesky.tracing.trace_plan` does.

use opentelemetry::trace::TraceContextExt;

use crate::plan::Plan;

/// Wraps `plan` in a span named `name`. The span's context is the one every
/// message of `plan` carries, so the engine's method spans nest under it;
/// it survives pauses, because the context travels with the plan, not the
/// thread.
///
/// ```
/// use skyrun::{telemetry::trace_plan, plan_stubs as bps, Plan, RunEngine};
/// actix::System::new().block_on(async {
///     let plan = trace_plan("demo plan", Plan::new("p", |ctx| async move { bps::null(&ctx).await }));
///     assert_eq!(plan.name(), "p");
///     RunEngine::new().run(plan).await.unwrap();
/// });
/// ```
pub fn trace_plan(name: impl Into<String>, plan: Plan) -> Plan {
    let span_name = name.into();
    let plan_name = plan.name().to_owned();
    Plan::new(plan_name, move |ctx| async move {
        match ctx.start_span(span_name) {
            None => plan.run(&ctx).await,
            Some(span) => {
                let cx = ctx.context().with_span(span);
                let inner = ctx.with_context(cx.clone());
                let result = plan.run(&inner).await;
                if let Err(e) = &result {
                    cx.span().add_event(
                        "exception",
                        vec![
                            opentelemetry::KeyValue::new("exception.type", e.kind()),
                            opentelemetry::KeyValue::new("exception.message", e.to_string()),
                            opentelemetry::KeyValue::new("exception.escaped", true),
                        ],
                    );
                    cx.span()
                        .set_status(opentelemetry::trace::Status::error(e.to_string()));
                }
                cx.span().end();
                result
            }
        }
    })
}
