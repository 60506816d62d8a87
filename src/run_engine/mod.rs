//! The RunEngine: an actix actor that executes plans, and the [`RunEngine`]
//! handle used to submit plans, control them and subscribe to documents.
//!
//! The plan runs on the engine actor's thread, stepped by the engine like
//! Bluesky steps its plan generators; each message is processed by one
//! handler (see `handlers.rs`). Devices are other actors: the engine sends
//! them requests carrying the propagated span context, and their Statuses
//! complete from their side.

mod builder;
mod bundler;
pub(crate) mod commands;
mod control;
mod core;
pub(crate) mod core_handle;
mod groups;
mod handlers;
mod pausable;
mod registry;
mod request_context;
mod suspender;
mod suspension;
pub(crate) mod turn;

use std::rc::Rc;
use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context as ActorContext, Handler, Message,
    ResponseFuture, WrapFuture,
};
use opentelemetry::Context;

pub use self::builder::{
    EngineOptions, NoSystem, RunEngineBuilder, DEFAULT_MAX_REWIND_MESSAGES, DEFAULT_REQUEST_TIMEOUT,
};
use self::control::AtomicState;
pub use self::control::EngineState;
use self::core::EngineCore;
pub(crate) use self::core::Sent;
pub(crate) use self::core_handle::CoreHandle;
use self::registry::Registry;
pub use self::registry::{CommandContext, ReplayHook};
pub use self::suspender::{Condition, InstalledSuspender, Suspender, SuspenderError, SuspenderId};
pub use self::suspension::Suspension;
use crate::documents::{Document, ExitStatus};
use crate::error::{ControlError, Interrupt, PlanError, PlanResult, RunError};
use crate::msg::Msg;
pub use crate::msg::{Command, CommandInfo, Trace};
use crate::reply::{Reply, RunSummary};
use crate::subscriptions::{Dispatcher, SubscriptionId};

/// A plan as the engine runs it: given the engine's port and the parent
/// span context, a future. A [`Plan`](crate::Plan) converts into one; the
/// engine itself knows nothing of plans.
pub struct Runnable {
    pub(crate) body: Box<dyn FnOnce(CoreHandle, Context) -> LocalPlanFuture + Send>,
}

pub(crate) type LocalPlanFuture = std::pin::Pin<Box<dyn std::future::Future<Output = PlanResult>>>;

impl std::fmt::Debug for Runnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runnable")
    }
}

/// A handle to a RunEngine actor: clonable, usable from any thread.
///
/// ```
/// use skyrun::{RunEngine, plans, ExitStatus};
/// use skyrun_actors::{sim::{SynAxis, SynGauss}, DeviceHandle};
/// use std::sync::{Arc, Mutex};
///
/// actix::System::new().block_on(async {
///     let re = RunEngine::new();
///     let motor = SynAxis::new("motor");
///     let det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
///     let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));
///     let names = Arc::new(Mutex::new(Vec::new()));
///     let n = names.clone();
///     re.subscribe(move |name, _doc| n.lock().unwrap().push(name.to_owned()));
///     let summary = re.run(plans::scan(vec![det], &motor, -1.0, 1.0, 3)).await.unwrap();
///     assert_eq!(summary.exit_status, ExitStatus::Success);
///     assert_eq!(*names.lock().unwrap(), ["start", "descriptor", "event", "event", "event", "stop"]);
/// });
/// ```
#[derive(Clone)]
pub struct RunEngine {
    addr: Addr<EngineActor>,
    state: Arc<AtomicState>,
    docs: Arc<Dispatcher>,
    registry: Arc<Registry>,
    suspenders: Arc<suspender::Suspenders>,
}

impl RunEngine {
    /// An engine with default options (call inside an actix system).
    ///
    /// # Panics
    /// Outside an actix system, with a message naming what is needed; see
    /// [`RunEngine::try_new`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// An engine with default options, or [`NoSystem`] outside an actix system.
    pub fn try_new() -> Result<Self, NoSystem> {
        Self::builder().try_build()
    }

    /// Registers `handler` for messages with command `name`, as Bluesky's
    /// `RE.register_command`: it gets the message and a [`CommandContext`],
    /// and its reply goes back to the plan. A name of the table is replaced.
    /// Registered commands are replayed on rewind and traced only with
    /// `trace_all_messages`.
    ///
    /// ```
    /// use skyrun::{Msg, Plan, Reply, RunEngine};
    /// actix::System::new().block_on(async {
    ///     let re = RunEngine::new();
    ///     re.register_command("answer", |_msg, _cx| async { Ok(Reply::Value(42.into())) });
    ///     assert!(re.commands().contains(&"answer".to_string()));
    ///     re.run(Plan::new("ask", |ctx| async move {
    ///         let Reply::Value(v) = ctx.send(Msg::new("answer")).await? else { unreachable!() };
    ///         assert_eq!(v, 42);
    ///         Ok(())
    ///     })).await.unwrap();
    /// });
    /// ```
    pub fn register_command<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(Msg, CommandContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Reply, PlanError>> + 'static,
    {
        self.registry.register(name, handler);
    }

    /// Calls `hook` with each message a rewind replays (after a pause or a
    /// suspension, the messages since the last checkpoint go through the
    /// engine again), as Bluesky's `msg_hook` sees them; `None` removes it.
    /// The plan does not send these again, so a hook on the plan's side
    /// would not see them.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use skyrun::{Msg, RunEngine};
    /// # actix_rt::System::new().block_on(async {
    /// let re = RunEngine::new();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// re.set_replay_hook(Some(Arc::new(move |m: &Msg| {
    ///     s.lock().unwrap().push(m.command.as_str().to_owned())
    /// })));
    /// re.set_replay_hook(None);
    /// # });
    /// ```
    pub fn set_replay_hook(&self, hook: Option<ReplayHook>) {
        self.registry.set_replay_hook(hook);
    }

    /// Removes a registered command; `false` if none was registered as `name`
    /// (the table's own commands cannot be removed).
    pub fn unregister_command(&self, name: &str) -> bool {
        self.registry.unregister(name)
    }

    /// Every command the engine answers (Bluesky's `RE.commands`): the table's
    /// and the registered ones, sorted.
    pub fn commands(&self) -> Vec<String> {
        let mut all: Vec<String> = Command::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        all.extend(self.registry.names());
        all.sort();
        all.dedup();
        all
    }

    /// Options for a new engine.
    pub fn builder() -> RunEngineBuilder {
        RunEngineBuilder::new()
    }

    /// Runs `plan` to its end; documents have all been delivered when this returns.
    pub async fn run(&self, plan: impl Into<Runnable>) -> Result<RunSummary, RunError> {
        self.run_with_parent(plan, Context::new()).await
    }

    /// Runs `plan` with `parent` as the parent span context of its spans (for
    /// example the context a launcher passed in `TRACEPARENT`).
    pub async fn run_with_parent(
        &self,
        plan: impl Into<Runnable>,
        parent: Context,
    ) -> Result<RunSummary, RunError> {
        let plan = plan.into();
        // As Bluesky's `RE()`: a plan starts once no suspender is tripped.
        self.suspenders.ready().await;
        let (summary, error) = self
            .addr
            .send(RunPlan { plan, parent })
            .await
            .map_err(|_| RunError::EngineGone)??;
        match (summary.exit_status, error) {
            (ExitStatus::Abort, _) => Err(RunError::Aborted { summary }),
            (ExitStatus::Fail, Some(error)) => Err(RunError::Failed { error, summary }),
            (ExitStatus::Fail, None) => Err(RunError::Failed {
                error: PlanError::Failed(summary.reason.clone()),
                summary,
            }),
            (ExitStatus::Success, _) => Ok(summary),
        }
    }

    /// The engine's state.
    pub fn state(&self) -> EngineState {
        self.state.get()
    }

    /// Asks the running plan to pause: at the next checkpoint when `defer`, else now
    /// (interrupting a wait or sleep; resume then rewinds to the last checkpoint).
    pub async fn pause(&self, defer: bool) -> Result<(), ControlError> {
        self.control(ControlMsg::Pause(defer)).await
    }

    /// Suspends the running plan until the suspension's condition is met
    /// (Bluesky's `request_suspend`): see [`Suspension`].
    pub async fn request_suspend(&self, suspension: Suspension) -> Result<(), ControlError> {
        self.control(ControlMsg::Suspend(suspension)).await
    }

    /// Resumes a paused plan, replaying the messages since its last checkpoint.
    pub async fn resume(&self) -> Result<(), ControlError> {
        self.control(ControlMsg::Resume).await
    }

    /// Aborts the plan: it cleans up, and its runs end with exit status `abort` and `reason`.
    pub async fn abort(&self, reason: impl Into<String>) -> Result<(), ControlError> {
        self.control(ControlMsg::Interrupt(Interrupt::Abort(reason.into())))
            .await
    }

    /// Stops the plan: it cleans up, and its runs end with exit status `success`.
    pub async fn stop(&self) -> Result<(), ControlError> {
        self.control(ControlMsg::Interrupt(Interrupt::Stop)).await
    }

    /// Halts the plan without letting it clean up; its runs end with exit status `abort`.
    pub async fn halt(&self) -> Result<(), ControlError> {
        self.control(ControlMsg::Interrupt(Interrupt::Halt)).await
    }

    /// Whether a paused plan, when resumed, replays the messages since its
    /// last checkpoint (Bluesky's `RE.rewindable`; `true` by default).
    ///
    /// ```
    /// actix::System::new().block_on(async {
    ///     let re = skyrun::RunEngine::new();
    ///     assert!(re.rewindable().await.unwrap());
    ///     re.set_rewindable(false).await.unwrap();
    ///     assert!(!re.rewindable().await.unwrap());
    /// });
    /// ```
    pub async fn rewindable(&self) -> Result<bool, ControlError> {
        self.rewindable_msg(None).await
    }

    /// Sets [`RunEngine::rewindable`] (for the plan running, and those after
    /// it), as a plan's `rewindable` message does.
    pub async fn set_rewindable(&self, rewindable: bool) -> Result<(), ControlError> {
        self.rewindable_msg(Some(rewindable)).await.map(|_| ())
    }

    async fn rewindable_msg(&self, flag: Option<bool>) -> Result<bool, ControlError> {
        self.flag(Flag::Rewindable, flag).await
    }

    /// Whether each run records the engine's pauses, resumes and
    /// suspensions as events of its stream `interruptions` (Bluesky's
    /// `RE.record_interruptions`; `false` by default). Set it between plans.
    ///
    /// ```
    /// actix::System::new().block_on(async {
    ///     let re = skyrun::RunEngine::new();
    ///     assert!(!re.record_interruptions().await.unwrap());
    ///     re.set_record_interruptions(true).await.unwrap();
    ///     assert!(re.record_interruptions().await.unwrap());
    /// });
    /// ```
    pub async fn record_interruptions(&self) -> Result<bool, ControlError> {
        self.flag(Flag::RecordInterruptions, None).await
    }

    /// Sets [`RunEngine::record_interruptions`] (runs opened from now on).
    pub async fn set_record_interruptions(&self, on: bool) -> Result<(), ControlError> {
        self.flag(Flag::RecordInterruptions, Some(on))
            .await
            .map(|_| ())
    }

    async fn flag(&self, which: Flag, value: Option<bool>) -> Result<bool, ControlError> {
        self.addr
            .send(SetFlag(which, value))
            .await
            .map_err(|_| ControlError {
                action: which.name(),
                state: "stopped",
            })
    }

    async fn control(&self, msg: ControlMsg) -> Result<(), ControlError> {
        self.addr.send(msg).await.map_err(|_| ControlError {
            action: "control",
            state: "stopped",
        })?
    }

    /// Calls `callback(name, document)` for every document, in order, on the
    /// dispatcher thread.
    pub fn subscribe(
        &self,
        callback: impl FnMut(&str, &Document) + Send + 'static,
    ) -> SubscriptionId {
        self.docs.subscribe(callback)
    }

    /// Removes a subscription; `false` if it was not there.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.docs.unsubscribe(id)
    }

    /// Reports of subscribers removed because they panicked.
    pub fn removed_subscribers(&self) -> Vec<String> {
        self.docs.removed_subscribers()
    }
}

impl std::fmt::Debug for RunEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEngine")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Default for RunEngine {
    fn default() -> Self {
        Self::new()
    }
}

struct EngineActor {
    core: Rc<EngineCore>,
}

impl Actor for EngineActor {
    type Context = ActorContext<Self>;
}

type RunResult = Result<(RunSummary, Option<PlanError>), RunError>;

struct RunPlan {
    plan: Runnable,
    parent: Context,
}

impl Message for RunPlan {
    type Result = RunResult;
}

impl Handler<RunPlan> for EngineActor {
    type Result = ResponseFuture<RunResult>;

    fn handle(&mut self, msg: RunPlan, ctx: &mut Self::Context) -> Self::Result {
        let state = self.core.engine_state();
        if state != EngineState::Idle {
            return Box::pin(async move { Err(RunError::Busy(state.as_str())) });
        }
        // Mark running now, so a second submission is refused before the plan starts.
        self.core.mark_running();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let core = self.core.clone();
        ctx.spawn(
            async move { core.execute(msg.plan, msg.parent).await }
                .into_actor(self)
                .map(move |r, _, _| {
                    let _ = tx.send(r);
                }),
        );
        Box::pin(async move { rx.await.map_err(|_| RunError::EngineGone) })
    }
}

/// An engine setting that is a flag.
#[derive(Clone, Copy)]
enum Flag {
    Rewindable,
    RecordInterruptions,
}

impl Flag {
    fn name(self) -> &'static str {
        match self {
            Flag::Rewindable => "rewindable",
            Flag::RecordInterruptions => "record_interruptions",
        }
    }
}

/// Sets a flag (`None` only asks); answers its value.
struct SetFlag(Flag, Option<bool>);

impl Message for SetFlag {
    type Result = bool;
}

impl Handler<SetFlag> for EngineActor {
    type Result = bool;

    fn handle(&mut self, msg: SetFlag, _: &mut Self::Context) -> bool {
        match msg.0 {
            Flag::Rewindable => self.core.rewindable(msg.1),
            Flag::RecordInterruptions => self.core.record_interruptions(msg.1),
        }
    }
}

enum ControlMsg {
    Pause(bool),
    Suspend(Suspension),
    Resume,
    Interrupt(Interrupt),
}

impl Message for ControlMsg {
    type Result = Result<(), ControlError>;
}

impl Handler<ControlMsg> for EngineActor {
    type Result = Result<(), ControlError>;

    fn handle(&mut self, msg: ControlMsg, _: &mut Self::Context) -> Self::Result {
        let state = self.core.engine_state();
        let c = self.core.control();
        match msg {
            ControlMsg::Pause(defer) => c.request_pause(state, defer),
            ControlMsg::Resume => c.request_resume(state),
            ControlMsg::Suspend(s) => c.request_suspend(state, s),
            ControlMsg::Interrupt(i) => c.request_interrupt(state, i),
        }
    }
}
