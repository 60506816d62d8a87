//! The engine's own thread: an actix system that owns the RunEngine and the
//! devices, and takes requests (run a plan file, pause, resume, abort,
//! stop, ping, replace the devices) over a channel, so the HTTP server on its tokio runtime never
//! shares a thread with the engine, and a stuck engine shows in `/healthz`
//! instead of stalling the server.

use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::Context;
use tokio::sync::{mpsc, oneshot};

use super::backend::{ControlReq, DocumentSink, Ended, TaskSpan};
use crate::config::{DeviceSet, Devices, PlanFile};
use crate::run_engine::EngineState;
use crate::{ControlError, RunEngine};
use skyrun_actors::SpanTracer;

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

/// Builds and runs one task's plan under a span named `task`.
async fn run_task(
    re: &RunEngine,
    (set, devices): (&DeviceSet, &Devices),
    tracer: &SpanTracer,
    (task_id, plan_name): (&str, &str),
    file: &PlanFile,
    parent: Context,
) -> Ended {
    let (span, run_parent) = TaskSpan::start(tracer, &parent, task_id, plan_name);
    let ended = match file.build(set, devices) {
        Err(e) => Ended::failed("ValueError", e.to_string()),
        Ok(built) => Ended::from_run(re.run_with_parent(built.plan, run_parent).await),
    };
    span.end(&ended);
    ended
}
