//! The engine's own thread: an actix system that owns the RunEngine and the
//! devices, and takes requests (run a plan file, pause, resume, abort,
//! stop, ping, replace the devices) over a channel, so the HTTP server on its tokio runtime never
//! shares a thread with the engine, and a stuck engine shows in `/healthz`
//! instead of stalling the server.

use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanContext, Status as SpanStatus, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use tokio::sync::{mpsc, oneshot};

use crate::config::{DeviceSet, Devices, PlanFile};
use crate::run_engine::EngineState;
use crate::{ControlError, Document, ExitStatus, RunEngine, RunError};
use skyrun_actors::SpanTracer;

/// How a task's plan ended, as the engine tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The runs' exit status.
    pub exit_status: ExitStatus,
    /// Why it did not succeed (empty on success).
    pub reason: String,
    /// Bluesky's name for what failed (`FailedStatus`, `RequestAbort`, ...), when it did.
    pub error_type: Option<String>,
}

/// A control request from outside the plan.
#[derive(Debug, Clone)]
pub enum ControlReq {
    /// Pause now, or at the next checkpoint.
    Pause {
        /// At the next checkpoint.
        defer: bool,
    },
    /// Resume a paused plan.
    Resume,
    /// Abort with a reason.
    Abort(String),
    /// Stop (runs end in success).
    Stop,
}

/// What the engine thread is asked.
pub(crate) enum EngineCmd {
    /// Build and run a plan file as task `task_id`, under `parent`.
    Run {
        task_id: String,
        plan_name: String,
        file: Box<PlanFile>,
        parent: Context,
        done: oneshot::Sender<Ended>,
    },
    Control {
        req: ControlReq,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    /// Answered by the engine actor itself: it is alive.
    Ping { reply: oneshot::Sender<EngineState> },
    /// Replace the devices with those of `set` (no task runs).
    Reload {
        set: Box<DeviceSet>,
        spawn_extra: Option<super::SpawnExtra>,
        reply: oneshot::Sender<()>,
    },
}

/// A document subscriber.
pub(crate) type DocumentSink = Box<dyn FnMut(&str, &Document) + Send>;

/// What the engine thread needs to start.
pub(crate) struct EngineSetup {
    pub set: DeviceSet,
    pub engine_tracer: SpanTracer,
    pub device_tracer: SpanTracer,
    /// Adds devices that exist only once the system runs (remote proxies).
    pub spawn_extra: Option<super::SpawnExtra>,
    /// Called with every document and the task it belongs to, on the dispatcher thread.
    pub on_document: DocumentSink,
}

/// The handle the HTTP side keeps.
#[derive(Clone)]
pub(crate) struct EngineLink {
    tx: mpsc::UnboundedSender<EngineCmd>,
}

impl EngineLink {
    pub fn send(&self, cmd: EngineCmd) -> bool {
        self.tx.send(cmd).is_ok()
    }

    /// Sends a control request and waits (at most `limit`) for its answer.
    pub async fn control(&self, req: ControlReq, limit: Duration) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        if !self.send(EngineCmd::Control { req, reply }) {
            return Err("the engine has stopped".into());
        }
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(r)) => r.map_err(|e| e.to_string()),
            Ok(Err(_)) => Err("the engine has stopped".into()),
            Err(_) => Err(format!("the engine did not answer within {limit:?}")),
        }
    }

    /// Replaces the engine's devices with those of `set` (and `spawn_extra`'s);
    /// `false` if the engine did not answer within `limit`.
    pub async fn reload(
        &self,
        set: DeviceSet,
        spawn_extra: Option<super::SpawnExtra>,
        limit: Duration,
    ) -> bool {
        let (reply, rx) = oneshot::channel();
        let cmd = EngineCmd::Reload {
            set: Box::new(set),
            spawn_extra,
            reply,
        };
        self.send(cmd) && matches!(tokio::time::timeout(limit, rx).await, Ok(Ok(())))
    }

    /// The engine's state, asked of the engine actor (so a stuck engine
    /// does not answer); `None` after `limit`.
    pub async fn ping(&self, limit: Duration) -> Option<EngineState> {
        let (reply, rx) = oneshot::channel();
        if !self.send(EngineCmd::Ping { reply }) {
            return None;
        }
        tokio::time::timeout(limit, rx).await.ok()?.ok()
    }
}

/// Starts the engine thread; returns once the devices are spawned.
pub(crate) fn start(setup: EngineSetup) -> std::io::Result<(EngineLink, JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<EngineCmd>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("skyrun-engine".into())
        .spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let EngineSetup {
                    mut set,
                    engine_tracer,
                    device_tracer,
                    spawn_extra,
                    mut on_document,
                } = setup;
                let mut devices = set.spawn(device_tracer.clone());
                if let Some(extra) = spawn_extra {
                    extra(&mut devices);
                }
                let re = RunEngine::builder().tracer(engine_tracer.clone()).build();
                re.subscribe(move |name, doc| on_document(name, doc));
                let _ = ready_tx.send(());
                while let Some(cmd) = rx.recv().await {
                    match cmd {
                        EngineCmd::Run {
                            task_id,
                            plan_name,
                            file,
                            parent,
                            done,
                        } => {
                            let (re, set, devices, tracer) = (
                                re.clone(),
                                set.clone(),
                                devices.clone(),
                                engine_tracer.clone(),
                            );
                            actix::spawn(async move {
                                let ended = run_task(
                                    &re,
                                    (&set, &devices),
                                    &tracer,
                                    (&task_id, &plan_name),
                                    &file,
                                    parent,
                                )
                                .await;
                                let _ = done.send(ended);
                            });
                        }
                        EngineCmd::Control { req, reply } => {
                            let re = re.clone();
                            actix::spawn(async move {
                                let r = match req {
                                    ControlReq::Pause { defer } => re.pause(defer).await,
                                    ControlReq::Resume => re.resume().await,
                                    ControlReq::Abort(reason) => re.abort(reason).await,
                                    ControlReq::Stop => re.stop().await,
                                };
                                let _ = reply.send(r);
                            });
                        }
                        EngineCmd::Reload {
                            set: new,
                            spawn_extra,
                            reply,
                        } => {
                            set = *new;
                            devices = set.spawn(device_tracer.clone());
                            if let Some(extra) = spawn_extra {
                                extra(&mut devices);
                            }
                            let _ = reply.send(());
                        }
                        EngineCmd::Ping { reply } => {
                            let re = re.clone();
                            actix::spawn(async move {
                                // A round trip through the engine actor's mailbox.
                                if re.rewindable().await.is_ok() {
                                    let _ = reply.send(re.state());
                                }
                            });
                        }
                    }
                }
            });
        })?;
    ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the engine thread stopped while starting"))?;
    Ok((EngineLink { tx }, thread))
}

/// `cx` as a context from outside the engine (remote), so the engine's
/// one-trace-per-run parenting puts the run span under it.
// NOTE: the same as `remote_parent` in src/bin/skyrun/run.rs, which is being
// refactored on branch issue25: once that lands, one of them should move to
// the library (skyrun::telemetry) and both call it.
fn remote_parent(cx: &SpanContext) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags(),
        true,
        cx.trace_state().clone(),
    ))
}

/// Builds and runs one task's plan under a span named `task`.
async fn run_task(
    re: &RunEngine,
    (set, devices): (&DeviceSet, &Devices),
    tracer: &SpanTracer,
    (task_id, plan_name): (&str, &str),
    file: &PlanFile,
    parent: Context,
) -> Ended {
    let span = tracer.start(
        "task",
        &parent,
        vec![
            KeyValue::new("task_id", task_id.to_owned()),
            KeyValue::new("plan_name", plan_name.to_owned()),
        ],
    );
    let run_parent = match &span {
        Some(s) => remote_parent(s.span_context()),
        None => parent,
    };
    let ended = match file.build(set, devices) {
        Err(e) => Ended {
            exit_status: ExitStatus::Fail,
            reason: e.to_string(),
            error_type: Some("ValueError".into()),
        },
        Ok(built) => match re.run_with_parent(built.plan, run_parent).await {
            Ok(s) => Ended {
                exit_status: s.exit_status,
                reason: s.reason,
                error_type: None,
            },
            Err(RunError::Failed { error, summary }) => Ended {
                exit_status: summary.exit_status,
                reason: summary.reason,
                error_type: Some(error.kind().to_owned()),
            },
            Err(RunError::Aborted { summary }) => Ended {
                exit_status: summary.exit_status,
                reason: summary.reason,
                error_type: Some("RequestAbort".into()),
            },
            Err(e) => Ended {
                exit_status: ExitStatus::Fail,
                reason: e.to_string(),
                error_type: Some("RunEngineError".into()),
            },
        },
    };
    if let Some(mut s) = span {
        s.set_attribute(KeyValue::new("exit_status", ended.exit_status.as_str()));
        if ended.exit_status != ExitStatus::Success {
            s.set_attribute(KeyValue::new("reason", ended.reason.clone()));
            s.set_status(SpanStatus::error(ended.reason.clone()));
        }
        s.end();
    }
    ended
}
