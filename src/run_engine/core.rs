//! The engine core: runs one plan, processes each message it sends
//! (interruptibly), pauses and rewinds, and closes everything on every exit path.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures::future::{select, Either};
use indexmap::IndexSet;
use opentelemetry::trace::{Span as _, Status as SpanStatus, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use skyrun_actors::{DeviceHandle, DeviceOp, SpanTracer};

use super::bundler::OpenRun;
use super::commands::{self, Trace};
use super::control::{AtomicState, Control, EngineState};
use super::core_handle::CoreHandle;
use super::groups::Groups;
use super::handlers::{After, Done};
use super::registry::Registry;
use super::request_context::RequestContext;
use super::{EngineOptions, Runnable};
use crate::documents::{new_uid, Document, ExitStatus, RunStop};
use crate::error::{Interrupt, PlanError};
use crate::msg::Msg;
use crate::reply::{Reply, RunSummary};
use crate::subscriptions::Dispatcher;
use crate::telemetry::spans::{msg_attributes, span_name};

/// Mutable state of the engine, only touched on its own thread.
#[derive(Default)]
pub(crate) struct State {
    pub runs: Vec<OpenRun>,
    pub groups: Groups,
    pub staged: IndexSet<DeviceHandle>,
    pub touched: IndexSet<DeviceHandle>,
    /// Messages since the last checkpoint; `None` when not rewindable.
    pub msg_cache: Option<Vec<Msg>>,
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

    pub fn control(&self) -> &Control {
        &self.control
    }

    pub fn engine_state(&self) -> EngineState {
        self.state.get()
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
    pub fn span_parent(&self, cx: &Context, run: Option<&str>) -> Context {
        if !self.opts.run_trace {
            return cx.clone();
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
                    cx.clone()
                } else {
                    run_cx
                }
            }
            None => cx.clone(),
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
        let (exit, reason, error) = match (self.control.outcome(), result) {
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
                interrupted: self.control.outcome(),
            },
            error,
        )
    }

    async fn cleanup(&self, exit: ExitStatus, reason: &str) {
        let runs: Vec<OpenRun> = std::mem::take(&mut self.st.borrow_mut().runs);
        for run in runs.into_iter().rev() {
            self.finish_run(run, exit, reason);
        }
        let (staged, touched) = {
            let mut st = self.st.borrow_mut();
            st.groups.clear();
            st.msg_cache = None;
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

    /// Processes one message from the plan: the whole of Bluesky's per-message loop.
    pub async fn send(self: &Rc<Self>, msg: Msg) -> Result<Reply, PlanError> {
        if let Some(i) = self.control.take_interrupt() {
            return Err(PlanError::Interrupted(i));
        }
        if self.control.pause_requested() == Some(false) {
            self.pause_and_rewind().await?;
        }
        // The table says what a rewind replays (registered commands are replayed).
        let cacheable = msg.command.info().is_none_or(|i| i.cached);
        if cacheable {
            let mut st = self.st.borrow_mut();
            if let Some(cache) = st.msg_cache.as_mut() {
                if cache.len() < self.opts.max_rewind_messages {
                    cache.push(msg.clone());
                } else {
                    st.msg_cache = None;
                }
            }
        }
        let done = loop {
            match self.process_interruptible(&msg).await {
                Processed::Done(r) => break r,
                Processed::Interrupted(i) => return Err(PlanError::Interrupted(i)),
                Processed::Paused => {
                    // Rewinding replays the cache, which ends with this message
                    // (or, when not rewindable, we process it again).
                    let rewindable = self.st.borrow().msg_cache.is_some();
                    if let Some(last) = self.pause_and_rewind().await? {
                        if rewindable && cacheable {
                            break last;
                        }
                    }
                }
            }
        }?;
        match done.after {
            After::Continue => {}
            After::PauseIfRequested => {
                if self.control.pause_requested() == Some(true) {
                    self.pause_and_rewind().await?;
                }
            }
            After::PauseNow => {
                self.control.clear_pause();
                self.pause_and_rewind().await?;
            }
        }
        // A status that failed since the plan was last told fails it now,
        // instead of this message's reply (Bluesky throws it into the plan
        // before sending the response back), even if nobody waits on it.
        let failed = self.st.borrow().groups.failures().take();
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(done.reply)
    }

    async fn process_interruptible(self: &Rc<Self>, msg: &Msg) -> Processed {
        let work = std::pin::pin!(self.process(msg));
        let stop = std::pin::pin!(self.control.interrupted());
        match select(work, stop).await {
            Either::Left((r, _)) => Processed::Done(r),
            Either::Right(((), _)) => match self.control.take_interrupt() {
                Some(i) => Processed::Interrupted(i),
                None => Processed::Paused,
            },
        }
    }

    /// Pauses until resumed; then replays the messages since the last
    /// checkpoint and returns the reply to the last one, if any.
    async fn pause_and_rewind(
        self: &Rc<Self>,
    ) -> Result<Option<Result<Done, PlanError>>, PlanError> {
        'paused: loop {
            self.control.clear_pause();
            // Subscribers have seen every document up to the pause once it is reported.
            self.docs.flush().await;
            self.state.set(EngineState::Paused);
            let touched = std::mem::take(&mut self.st.borrow_mut().touched);
            stop_devices(&touched).await;
            let resumed = self.control.paused().await;
            self.state.set(EngineState::Running);
            resumed.map_err(PlanError::Interrupted)?;
            let replay = {
                let mut st = self.st.borrow_mut();
                st.groups.clear();
                for run in st.runs.iter_mut() {
                    run.rewind();
                }
                st.msg_cache.clone().unwrap_or_default()
            };
            let mut last = None;
            for m in &replay {
                match self.process_interruptible(m).await {
                    Processed::Done(r) => last = Some(r),
                    Processed::Interrupted(i) => return Err(PlanError::Interrupted(i)),
                    Processed::Paused => continue 'paused,
                }
            }
            return Ok(last);
        }
    }

    /// Processes one message, in a span when it is traced.
    async fn process(self: &Rc<Self>, msg: &Msg) -> Result<Done, PlanError> {
        let registered = self.registry.handler(&msg.command);
        let by_default = match (&registered, msg.command.info()) {
            (None, Some(info)) => info.trace == Trace::Bluesky,
            _ => false,
        };
        let traced = self.tracer.is_enabled() && (self.opts.trace_all_messages || by_default);
        let parent = self.span_parent(&msg.context, msg.run.as_deref());
        let span = traced
            .then(|| {
                self.tracer
                    .start(span_name(&msg.command), &parent, msg_attributes(msg))
            })
            .flatten();
        let Some(mut span) = span else {
            return commands::dispatch(self, msg, registered, &RequestContext::of(&parent)).await;
        };
        // What runs under the span (device requests, their Status spans) needs
        // its context only, built if a request asks: the span itself stays
        // here, unboxed and unshared.
        let cx = RequestContext::under(&parent, span.span_context().clone());
        let result = commands::dispatch(self, msg, registered, &cx).await;
        if let Err(e) = &result {
            skyrun_actors::record_exception(&mut span, e.kind(), e.to_string(), true);
            span.set_status(SpanStatus::error(format!("{}: {e}", e.kind())));
        }
        span.end();
        result
    }
}

/// Stops the devices a plan moved (those that can be stopped), as Bluesky
/// does on pause and on every unsuccessful exit.
async fn stop_devices(devices: &IndexSet<DeviceHandle>) {
    let cx = Context::new();
    for dev in devices.iter().filter(|d| d.capabilities().stoppable) {
        let _ = dev.request(DeviceOp::Stop { success: true }, &cx).await;
    }
}
