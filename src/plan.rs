//! Plans: Rust async code given a [`PlanCtx`], through which it sends
//! messages to the RunEngine and gets their results back — so a plan can read
//! a detector and decide where to move next.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use opentelemetry::Context;

use crate::error::PlanError;
pub use crate::error::PlanResult;
use crate::msg::{Command, Msg};
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
    /// The hooks around this plan's messages ([`PlanCtx::with_hook`]).
    hooks: Option<Rc<Hooked>>,
}

/// Where a [`PlanCtx::with_hook`] hook is called: before a message is sent,
/// or after its reply came back.
#[derive(Debug, Clone, PartialEq)]
pub enum MsgPoint {
    /// Before the message with this command (and run key) is sent.
    Before(Command, Option<String>),
    /// After its reply came back.
    After(Command, Option<String>),
}

/// A hook around a plan's messages: given a connection whose messages it
/// sends are not hooked again, and where it is called.
pub type MsgHook = Rc<dyn Fn(PlanCtx, MsgPoint) -> Pin<Box<dyn Future<Output = PlanResult>>>>;

struct Hooked {
    hook: MsgHook,
    /// The hooks of the connection this one was made from.
    outer: Option<Rc<Hooked>>,
}

impl PlanCtx {
    pub(crate) fn new(core: CoreHandle, cx: Context) -> Self {
        PlanCtx {
            core,
            cx,
            hooks: None,
        }
    }

    /// The same connection, with `hook` called before each message this
    /// plan sends and after its reply (Bluesky's `plan_mutator`, for
    /// messages added around others, as its `baseline_wrapper` does). The
    /// hook's own messages go through the hooks this connection already had.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::sync::{Arc, Mutex};
    /// use skyrun::{plan_stubs as bps, Command, MsgPoint, Plan, RunEngine};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let plan = Plan::new("hooked", move |ctx| async move {
    ///     let hooked = ctx.with_hook(Rc::new(move |_ctx, point| {
    ///         s.lock().unwrap().push(point);
    ///         Box::pin(async { Ok(()) })
    ///     }));
    ///     bps::null(&hooked).await
    /// });
    /// actix::System::new().block_on(async { RunEngine::new().run(plan).await.unwrap(); });
    /// assert_eq!(
    ///     *seen.lock().unwrap(),
    ///     [MsgPoint::Before(Command::Null, None), MsgPoint::After(Command::Null, None)]
    /// );
    /// ```
    pub fn with_hook(&self, hook: MsgHook) -> PlanCtx {
        PlanCtx {
            core: self.core.clone(),
            cx: self.cx.clone(),
            hooks: Some(Rc::new(Hooked {
                hook,
                outer: self.hooks.clone(),
            })),
        }
    }

    /// Sends `msg` (stamped with this plan's span context) and waits for its result.
    pub async fn send(&self, mut msg: Msg) -> Result<Reply, PlanError> {
        if let Some(hooked) = &self.hooks {
            return self.send_hooked(hooked.clone(), msg).await;
        }
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

    /// `send` through the innermost hook (boxed: a hooked plan is rare, and
    /// every other message's future stays small).
    #[inline(never)]
    fn send_hooked(
        &self,
        hooked: Rc<Hooked>,
        msg: Msg,
    ) -> Pin<Box<dyn Future<Output = Result<Reply, PlanError>> + '_>> {
        Box::pin(async move {
            let inner = PlanCtx {
                core: self.core.clone(),
                cx: self.cx.clone(),
                hooks: hooked.outer.clone(),
            };
            let (command, run) = (msg.command.clone(), msg.run.clone());
            (hooked.hook)(
                inner.clone(),
                MsgPoint::Before(command.clone(), run.clone()),
            )
            .await?;
            let reply = inner.send(msg).await?;
            (hooked.hook)(inner, MsgPoint::After(command, run)).await?;
            Ok(reply)
        })
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
            hooks: self.hooks.clone(),
        }
    }

    /// Starts a span named `name` as a child of this plan's context (or of the
    /// run span, in one-trace-per-run mode); `None` when untraced.
    pub fn start_span(&self, name: String) -> Option<skyrun_actors::ActiveSpan> {
        self.core.start_span(name, &self.cx)
    }
}
