//! The engine core: runs one plan, processes each message it sends
//! (interruptibly), pauses and rewinds, and closes everything on every exit path.

mod pausing;

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use futures::future::{select, Either};
use indexmap::IndexSet;
use opentelemetry::trace::{Span as _, Status as SpanStatus, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use skyrun_actors::{ActiveSpan, DeviceHandle, DeviceOp, SpanTracer};

use super::bundler::OpenRun;
use super::commands::{self, Dispatched};
use super::control::{AtomicState, Control, EngineState};
use super::core_handle::CoreHandle;
use super::groups::Groups;
use super::handlers::{After, Done};
use super::registry::Registry;
use super::request_context::RequestContext;
use super::{EngineOptions, Runnable};
use crate::documents::{new_uid, Document, ExitStatus, RunStop};
use crate::error::{Interrupt, PlanError};
use crate::msg::Trace;
use crate::msg::{Command, Msg};
use crate::reply::{Reply, RunSummary};
use crate::subscriptions::Dispatcher;
use crate::telemetry::spans::{msg_attributes, span_name};

/// Devices in insertion order, hashed fast (every `set` looks one up).
pub(crate) type DeviceSet = IndexSet<DeviceHandle, hashbrown::DefaultHashBuilder>;

/// Mutable state of the engine, only touched on its own thread.
#[derive(Default)]
pub(crate) struct State {
    pub runs: Vec<OpenRun>,
    pub groups: Groups,
    pub staged: DeviceSet,
    /// Devices moved since the last checkpoint (stopped on pause and failure).
    pub touched: DeviceSet,
    /// Pausable devices the plan has named (told of a pause and a resume).
    pub pausable: DeviceSet,
    /// Messages since the last checkpoint; `None` when not rewindable.
    pub msg_cache: Option<Vec<Rc<Msg>>>,
    /// `clear_checkpoint` since the last checkpoint: the plan said it cannot
    /// be resumed, so a pause aborts it (Bluesky's `FailedPause`). A cache
    /// grown past `max_rewind_messages` is not this: that plan pauses and
    /// goes on where it paused.
    pub checkpoint_cleared: bool,
    /// `rewindable(False)` is in force: messages are not cached (Bluesky's
    /// `RE.rewindable`, kept across plans).
    pub not_rewindable: bool,
    /// Each run records its interruptions (Bluesky's `record_interruptions`).
    pub record_interruptions: bool,
    pub scan_id: u64,
    pub run_uids: Vec<String>,
}

pub(crate) struct EngineCore {
    st: RefCell<State>,
    control: Control,
    state: Arc<AtomicState>,
    docs: Arc<Dispatcher>,
    tracer: SpanTracer,
    opts: EngineOptions,
    registry: Arc<Registry>,
    turn: super::turn::Turn,
    /// A suspension's pre- or post-plan is running: its messages are not
    /// kept for a rewind.
    suspending: std::cell::Cell<bool>,
}

/// What a pause ends with: the reply to the last message replayed, if any.
type PauseOutcome = Result<Option<Result<Done, PlanError>>, PlanError>;

/// A reply, or the error that fails the plan instead.
type Answer = Result<Reply, PlanError>;

/// What [`EngineCore::send_now`] did with a message.
pub(crate) enum Sent {
    /// Processed: its reply.
    Now(Result<Reply, PlanError>),
    /// Processed, and its pause is due: [`EngineCore::finish`] pauses, then replies.
    PauseFirst(Done),
}

enum Processed {
    Done(Result<Done, PlanError>),
    Paused,
    Interrupted(Interrupt),
}

impl EngineCore {
    pub fn new(
        state: Arc<AtomicState>,
        docs: Arc<Dispatcher>,
        tracer: SpanTracer,
        opts: EngineOptions,
        registry: Arc<Registry>,
    ) -> Self {
        EngineCore {
            st: RefCell::new(State::default()),
            control: Control::default(),
            state,
            docs,
            tracer,
            opts,
            registry,
            turn: Default::default(),
            suspending: Default::default(),
        }
    }

    /// The engine's mutable state (borrowed for the caller's statement).
    pub fn st(&self) -> std::cell::RefMut<'_, State> {
        self.st.borrow_mut()
    }

    pub fn opts(&self) -> &EngineOptions {
        &self.opts
    }

    pub fn tracer(&self) -> &SpanTracer {
        &self.tracer
    }

    /// When the plan next gives its executor a turn (see [`super::turn`]).
    #[inline]
    pub fn turn(&self) -> &super::turn::Turn {
        &self.turn
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    pub fn engine_state(&self) -> EngineState {
        self.state.get()
    }

    /// Sets whether a rewind may replay the messages that follow (`None`
    /// only asks); the setting. A change while the plan can be resumed starts
    /// the checkpoint state again, as Bluesky's `RE.rewindable` setter does.
    pub fn rewindable(&self, flag: Option<bool>) -> bool {
        let mut st = self.st.borrow_mut();
        if let Some(flag) = flag {
            let was = !st.not_rewindable;
            st.not_rewindable = !flag;
            if flag != was && st.msg_cache.is_some() {
                st.msg_cache = Some(Vec::new());
                for run in st.runs.iter_mut() {
                    run.checkpoint();
                }
            }
        }
        !st.not_rewindable
    }

    /// Marks the engine running (a plan was accepted and is about to start).
    pub fn mark_running(&self) {
        self.state.set(EngineState::Running);
    }

    pub fn emit(&self, doc: Document) {
        self.docs.emit(doc);
    }

    /// The run a message addresses (by run key).
    pub fn run_index(&self, key: Option<&str>) -> Option<usize> {
        self.st
            .borrow()
            .runs
            .iter()
            .position(|r| r.key.as_deref() == key)
    }

    /// The parent for a span started on behalf of `cx`: the span in `cx`, or,
    /// with one-trace-per-run, the run span unless `cx` is a span of the
    /// plan's own inside the run's trace (a `trace_plan` span). A remote `cx`
    /// (a `TRACEPARENT`, or the CLI's plan span) never outranks the run span.
    pub fn span_parent<'a>(&self, cx: &'a Context, run: Option<&str>) -> Cow<'a, Context> {
        if !self.opts.run_trace {
            return Cow::Borrowed(cx);
        }
        let st = self.st.borrow();
        let run = st
            .runs
            .iter()
            .rev()
            .find(|r| run.is_none() || r.key.as_deref() == run)
            .and_then(|r| r.span_cx.clone());
        match run {
            Some(run_cx) => {
                let here = cx.span().span_context().trace_id();
                if cx.span().span_context().is_valid()
                    && !cx.span().span_context().is_remote()
                    && here == run_cx.span().span_context().trace_id()
                {
                    Cow::Borrowed(cx)
                } else {
                    Cow::Owned(run_cx)
                }
            }
            None => Cow::Borrowed(cx),
        }
    }

    /// Runs `plan` to the end and closes whatever it left open.
    pub async fn execute(
        self: Rc<Self>,
        plan: Runnable,
        parent: Context,
    ) -> (RunSummary, Option<PlanError>) {
        self.control.reset();
        {
            let mut st = self.st.borrow_mut();
            st.msg_cache = Some(Vec::new());
            st.checkpoint_cleared = false;
            st.run_uids.clear();
            // Statuses that failed after the last plan ended (stopped in its
            // cleanup) are not this plan's.
            st.groups.clear();
        }
        self.state.set(EngineState::Running);
        let result = {
            // The halt is polled first, so a halted plan never runs another step.
            let plan_fut = std::pin::pin!((plan.body)(CoreHandle::new(self.clone()), parent));
            let halt = std::pin::pin!(self.control.halted());
            match select(halt, plan_fut).await {
                Either::Left(((), _)) => Err(PlanError::Interrupted(Interrupt::Halt)),
                Either::Right((r, _)) => r,
            }
        };
        // A plan that ends with an interruption no one asked for (a Python
        // plan raising KeyboardInterrupt: Bluesky halts) is interrupted so.
        let outcome = match (self.control.outcome(), &result) {
            (None, Err(PlanError::Interrupted(i))) => Some(i.clone()),
            (o, _) => o,
        };
        let (exit, reason, error) = match (outcome.clone(), result) {
            (Some(Interrupt::Stop), _) => (ExitStatus::Success, String::new(), None),
            (Some(Interrupt::Abort(r)), _) => (ExitStatus::Abort, r, None),
            (Some(Interrupt::Halt), _) => (ExitStatus::Abort, "halted".to_owned(), None),
            (None, Ok(())) => (ExitStatus::Success, String::new(), None),
            (None, Err(e)) => (ExitStatus::Fail, e.to_string(), Some(e)),
        };
        self.cleanup(exit, &reason).await;
        self.docs.flush().await;
        let run_uids = std::mem::take(&mut self.st.borrow_mut().run_uids);
        self.state.set(EngineState::Idle);
        (
            RunSummary {
                exit_status: exit,
                reason,
                run_uids,
                interrupted: outcome,
            },
            error,
        )
    }

    async fn cleanup(self: &Rc<Self>, exit: ExitStatus, reason: &str) {
        // Flyers kicked off and never collected are collected first, as Bluesky's backstop does.
        let keys: Vec<Option<String>> = self
            .st
            .borrow()
            .runs
            .iter()
            .map(|r| r.key.clone())
            .collect();
        for key in keys {
            super::handlers::collect::backstop(self, key.as_deref()).await;
        }
        let runs: Vec<OpenRun> = std::mem::take(&mut self.st.borrow_mut().runs);
        for run in runs.into_iter().rev() {
            self.finish_run(run, exit, reason);
        }
        let (staged, touched) = {
            let mut st = self.st.borrow_mut();
            st.groups.clear();
            st.msg_cache = None;
            st.pausable.clear();
            (
                std::mem::take(&mut st.staged),
                std::mem::take(&mut st.touched),
            )
        };
        let cx = Context::new();
        if exit != ExitStatus::Success || self.control.outcome().is_some() {
            stop_devices(&touched).await;
        }
        for dev in staged.iter().rev() {
            let _ = dev.request(DeviceOp::Unstage, &cx).await;
        }
    }

    /// Emits the stop document of `run` and ends its span.
    pub fn finish_run(&self, run: OpenRun, exit: ExitStatus, reason: &str) {
        self.emit(Document::Stop(RunStop {
            uid: new_uid(),
            time: skyrun_actors::now(),
            run_start: run.uid.clone(),
            exit_status: exit,
            reason: reason.to_owned(),
            num_events: run.num_events.clone(),
        }));
        if let Some(cx) = &run.span_cx {
            let span = cx.span();
            span.set_attribute(KeyValue::new("exit_status", exit.as_str()));
            span.set_attribute(KeyValue::new("reason", reason.to_owned()));
            if exit == ExitStatus::Fail {
                span.set_status(SpanStatus::error(reason.to_owned()));
            }
            span.end();
        }
    }

    /// Processes one message from the plan at once, without a future, when
    /// nothing in it can wait: no pause is pending, its command answers at
    /// once (`waits: false` in the table) and is not replaced by a
    /// registered one. Otherwise the message back, shared, for
    /// [`EngineCore::send`]. Only a message the rewind cache keeps is put in
    /// an `Rc` here (none once the cache is full or off). The handler's answer is [`Sent::PauseFirst`]
    /// when the pause its [`After`] asks for is due: for
    /// [`EngineCore::finish`]. The same steps as `send`, in the same order.
    #[inline]
    pub fn send_now(self: &Rc<Self>, msg: Msg) -> Result<Sent, Rc<Msg>> {
        if let Some(i) = self.control.take_interrupt() {
            return Ok(Sent::Now(Err(PlanError::Interrupted(i))));
        }
        if self.control.pause_requested() == Some(false)
            || !msg.command.answers_now()
            || self.registry.handler(&msg.command).is_some()
        {
            return Err(Rc::new(msg));
        }
        self.see_pausable(&msg);
        let (owned, shared);
        let msg: &Msg = if self.cacheable(&msg.command) && self.caching() {
            shared = Rc::new(msg);
            self.cache(&shared);
            &shared
        } else {
            owned = msg;
            &owned
        };
        let (parent, span) = self.start_span(msg, false);
        let result = {
            let cx = request_context(&parent, &span);
            commands::dispatch_now(self, msg, &cx)
                .expect("the command answers now: the table says so")
        };
        end_span(span, &result);
        Ok(match result {
            Err(e) => Sent::Now(Err(e)),
            Ok(done) if self.pause_due(done.after) => Sent::PauseFirst(done),
            Ok(done) => Sent::Now(self.reply(done.reply)),
        })
    }

    /// Processes one message from the plan: the whole of Bluesky's per-message loop.
    pub async fn send(self: &Rc<Self>, msg: Rc<Msg>) -> Result<Reply, PlanError> {
        if let Some(i) = self.control.take_interrupt() {
            return Err(PlanError::Interrupted(i));
        }
        if self.control.pause_requested() == Some(false) {
            self.pause_and_rewind_boxed().await?;
        }
        let cached = self.cache(&msg);
        self.see_pausable(&msg);
        let done = loop {
            match self.process_interruptible(&msg).await {
                Processed::Done(r) => break r,
                Processed::Interrupted(i) => return Err(PlanError::Interrupted(i)),
                Processed::Paused => {
                    // Rewinding replays the cache, which ends with this message
                    // (or, when not rewindable, we process it again).
                    let rewindable = self.st.borrow().msg_cache.is_some();
                    if let Some(last) = self.pause_and_rewind_boxed().await? {
                        if rewindable && cached {
                            break last;
                        }
                    }
                }
            }
        }?;
        if self.pause_due(done.after) {
            return self.finish(done).await;
        }
        self.reply(done.reply)
    }

    /// Pauses as the handler's [`After`] asks (the pause is due), then replies.
    #[inline(never)]
    pub fn finish(self: &Rc<Self>, done: Done) -> Pin<Box<dyn Future<Output = Answer> + '_>> {
        Box::pin(async move {
            if done.after == After::PauseNow {
                self.control.clear_pause();
            }
            self.pause_and_rewind().await?;
            self.reply(done.reply)
        })
    }

    /// The table says what a rewind replays (registered commands are
    /// replayed), unless `rewindable(False)` is in force: caches `msg` if
    /// so (shared, not copied); whether a rewind would replay it.
    #[inline]
    fn cache(&self, msg: &Rc<Msg>) -> bool {
        if !self.cacheable(&msg.command) {
            return false;
        }
        let mut st = self.st.borrow_mut();
        if st.not_rewindable || self.suspending.get() {
            return false;
        }
        if let Some(cache) = st.msg_cache.as_mut() {
            if cache.len() < self.opts.max_rewind_messages {
                cache.push(msg.clone());
                return true;
            }
            st.msg_cache = None;
        }
        false
    }

    /// Whether the rewind cache keeps messages of `command`: the table says
    /// so, and a `null` is kept only for a replay hook to see.
    #[inline]
    fn cacheable(&self, command: &Command) -> bool {
        cacheable(command) || (*command == Command::Null && self.registry.has_replay_hook())
    }

    /// Records an interruption (`pause`, `resume`, a suspension's
    /// justification) in every open run that records them.
    fn record_interruption(&self, what: &str) {
        let docs: Vec<Document> = {
            let mut st = self.st.borrow_mut();
            if !st.record_interruptions {
                return;
            }
            st.runs
                .iter_mut()
                .filter_map(|r| r.interruption(what))
                .collect()
        };
        docs.into_iter().for_each(|d| self.emit(d));
    }

    /// Sets whether runs record their interruptions (`None` only asks).
    pub fn record_interruptions(&self, flag: Option<bool>) -> bool {
        let mut st = self.st.borrow_mut();
        if let Some(flag) = flag {
            st.record_interruptions = flag;
        }
        st.record_interruptions
    }

    /// Whether a message the table caches would be cached now.
    #[inline]
    fn caching(&self) -> bool {
        let st = self.st.borrow();
        st.msg_cache.is_some() && !st.not_rewindable && !self.suspending.get()
    }

    /// Keeps `msg`'s device among those told of a pause, if it is pausable.
    #[inline]
    fn see_pausable(&self, msg: &Msg) {
        if let Some(dev) = &msg.obj {
            if dev.capabilities().pausable {
                self.keep_pausable(dev);
            }
        }
    }

    #[inline(never)]
    fn keep_pausable(&self, dev: &DeviceHandle) {
        let mut st = self.st.borrow_mut();
        if !st.pausable.contains(dev) {
            st.pausable.insert(dev.clone());
        }
    }

    /// Whether the pause a handler's `after` asks for is due now.
    #[inline]
    fn pause_due(&self, after: After) -> bool {
        match after {
            After::Continue => false,
            After::PauseIfRequested => self.control.pause_requested() == Some(true),
            After::PauseNow => true,
        }
    }

    /// The reply to the plan: a status that failed since the plan was last
    /// told fails it now, instead of this message's reply (Bluesky throws it
    /// into the plan before sending the response back), even if nobody
    /// waits on it.
    #[inline]
    fn reply(&self, reply: Reply) -> Result<Reply, PlanError> {
        let failed = self.st.borrow().groups.failures().take();
        match failed {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// Processes one message, in a span when it is traced; a pause or an
    /// interruption while its handler waits drops the handler's work.
    async fn process_interruptible(self: &Rc<Self>, msg: &Msg) -> Processed {
        let registered = self.registry.handler(&msg.command);
        let (parent, span) = self.start_span(msg, registered.is_some());
        let cx = request_context(&parent, &span);
        let result = match commands::dispatch(self, msg, registered, &cx) {
            Dispatched::Now(r) => r,
            Dispatched::Later(mut work) => {
                let mut stop = std::pin::pin!(self.control.interrupted());
                // The work is polled first (what is done is not interrupted).
                let done = std::future::poll_fn(|c| {
                    if let Poll::Ready(r) = work.as_mut().poll(c) {
                        return Poll::Ready(Some(r));
                    }
                    if stop.as_mut().poll(c).is_ready() {
                        return Poll::Ready(None);
                    }
                    Poll::Pending
                })
                .await;
                match done {
                    Some(r) => r,
                    None => {
                        return match self.control.take_interrupt() {
                            Some(i) => Processed::Interrupted(i),
                            None => Processed::Paused,
                        }
                    }
                }
            }
        };
        end_span(span, &result);
        Processed::Done(result)
    }

    /// The parent of `msg`'s span, and the span when it is traced (a
    /// `registered` command only with `trace_all_messages`).
    #[inline]
    fn start_span<'m>(
        &self,
        msg: &'m Msg,
        registered: bool,
    ) -> (Cow<'m, Context>, Option<ActiveSpan>) {
        let by_default = !registered
            && msg
                .command
                .info()
                .is_some_and(|info| info.trace == Trace::Bluesky);
        let traced = self.tracer.is_enabled() && (self.opts.trace_all_messages || by_default);
        let parent = self.span_parent(&msg.context, msg.run.as_deref());
        let span = traced
            .then(|| {
                self.tracer
                    .start(span_name(&msg.command), &parent, msg_attributes(msg))
            })
            .flatten();
        (parent, span)
    }
}

/// Whether a rewind replays `command` (the table says; registered commands are replayed).
#[inline]
fn cacheable(command: &crate::msg::Command) -> bool {
    command.info().is_none_or(|i| i.cached)
}

/// What runs under a message's span (device requests, their Status spans)
/// needs its context only, built if a request asks: the span itself stays
/// with the engine, unboxed and unshared.
#[inline]
fn request_context<'a>(parent: &'a Context, span: &Option<ActiveSpan>) -> RequestContext<'a> {
    match span {
        Some(span) => RequestContext::under(parent, span.span_context().clone()),
        None => RequestContext::of(parent),
    }
}

/// Ends a message's span, recording its error.
#[inline]
fn end_span(span: Option<ActiveSpan>, result: &Result<Done, PlanError>) {
    if let Some(mut span) = span {
        if let Err(e) = result {
            skyrun_actors::record_exception(&mut span, e.kind(), e.to_string(), true);
            span.set_status(SpanStatus::error(format!("{}: {e}", e.kind())));
        }
        span.end();
    }
}

/// Stops the devices a plan moved (those that can be stopped), as Bluesky
/// does on pause and on every unsuccessful exit.
async fn stop_devices(devices: &DeviceSet) {
    let cx = Context::new();
    for dev in devices.iter().filter(|d| d.capabilities().stoppable) {
        let _ = dev.request(DeviceOp::Stop { success: true }, &cx).await;
    }
}

#[cfg(test)]
mod tests;
