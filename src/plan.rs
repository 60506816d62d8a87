//! Plans: Rust async code given a [`PlanCtx`], through which it sends
//! messages to the RunEngine and gets their results back — so a plan can read
//! a detector and decide where to move next.

use std::future::Future;
use std::pin::Pin;

use opentelemetry::Context;

use crate::error::PlanError;
pub use crate::error::PlanResult;
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::{CoreHandle, Runnable, Sent};

type Body = Box<dyn FnOnce(PlanCtx) -> Pin<Box<dyn Future<Output = PlanResult>>> + Send>;

/// A plan: a one-shot async procedure run by the RunEngine.
///
/// ```
/// use skyrun::{Plan, plan_stubs as bps, RunEngine};
/// let plan = Plan::new("two nulls", |ctx| async move {
///     bps::null(&ctx).await?;
///     bps::null(&ctx).await?;
///     Ok(())
/// });
/// assert_eq!(plan.name(), "two nulls");
/// actix::System::new().block_on(async { RunEngine::new().run(plan).await.unwrap(); });
/// ```
pub struct Plan {
    name: String,
    body: Body,
}

impl Plan {
    /// A plan named `name` whose body is `f`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: FnOnce(PlanCtx) -> Fut + Send + 'static,
        Fut: Future<Output = PlanResult> + 'static,
    {
        Plan {
            name: name.into(),
            body: Box::new(move |ctx| Box::pin(f(ctx))),
        }
    }

    /// The plan's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the plan with `ctx` (inside another plan, to compose them).
    pub async fn run(self, ctx: &PlanCtx) -> PlanResult {
        (self.body)(ctx.clone()).await
    }
}

impl From<Plan> for Runnable {
    fn from(plan: Plan) -> Runnable {
        let body = plan.body;
        Runnable {
            body: Box::new(move |core, cx| body(PlanCtx::new(core, cx))),
        }
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plan({:?})", self.name)
    }
}

/// A plan's connection to the RunEngine, and the span context its messages carry.
#[derive(Clone)]
pub struct PlanCtx {
    core: CoreHandle,
    cx: Context,
}

impl PlanCtx {
    pub(crate) fn new(core: CoreHandle, cx: Context) -> Self {
        PlanCtx { core, cx }
    }

    /// Sends `msg` (stamped with this plan's span context) and waits for its result.
    pub async fn send(&self, mut msg: Msg) -> Result<Reply, PlanError> {
        msg.context = self.cx.clone();
        // A message whose handler cannot wait is answered at once, without
        // the engine's future (whose building and moving is most of a
        // message's cost).
        let core = self.core.core();
        // However fast the plan's messages are answered, the engine's thread
        // serves its other work (control requests, timers, actors) every
        // millisecond or so.
        if core.turn().due() {
            crate::run_engine::turn::give().await;
        }
        match core.send_now(msg) {
            Ok(Sent::Now(reply)) => reply,
            Ok(Sent::PauseFirst(done)) => core.finish(done).await,
            // Shared from here on (with the rewind cache too): never copied again.
            Err(msg) => core.send(msg).await,
        }
    }

    /// Sends `msg` and checks that its reply is of the kind its command gives,
    /// with `expect` (one of [`Reply`]'s typed accessors, such as
    /// [`Reply::status`]): a reply of another kind is a
    /// [`PlanError::WrongReply`] naming the command.
    pub async fn call<T>(
        &self,
        msg: Msg,
        expect: impl FnOnce(Reply, &crate::Command) -> Result<T, PlanError>,
    ) -> Result<T, PlanError> {
        let command = msg.command.clone();
        let reply = self.send(msg).await?;
        expect(reply, &command)
    }

    /// The span context the plan's messages carry.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The same connection, with messages carrying `cx` (see `trace_plan`).
    pub fn with_context(&self, cx: Context) -> PlanCtx {
        PlanCtx {
            core: self.core.clone(),
            cx,
        }
    }

    /// Starts a span named `name` as a child of this plan's context (or of the
    /// run span, in one-trace-per-run mode); `None` when untraced.
    pub fn start_span(&self, name: String) -> Option<skyrun_actors::ActiveSpan> {
        self.core.start_span(name, &self.cx)
    }
}
