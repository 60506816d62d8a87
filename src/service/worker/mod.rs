//! The worker: blueapi's task life cycle over the engine thread. Tasks are
//! created pending (`POST /tasks`), one at a time becomes active (`PUT
//! /worker/task`, 409 while another runs), runs on the engine, and ends
//! complete with its outcome. Every document of the active task, and every
//! change of the worker's state, goes out as an update to the subscribers
//! (the WebSocket route) and to the task event sink (`skyrun service
//! --nats`): `updates.rs`. The task list, with the tasks of the services
//! sharing the record, is in `listing.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use opentelemetry::Context;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, oneshot};

use super::backend::{Backend, ControlReq, Ended, Job, Prepared, TaskEventSink};
use super::model::{
    ArgumentError, EnvironmentResponse, Outcome, Task, TaskRequest, TrackableTask, WorkerState,
};
use super::progress::Progress;
use super::record::{OpenedRecord, TaskRecord};
use crate::run_engine::EngineState;
use crate::ExitStatus;

mod listing;
mod updates;

/// The most tasks kept; the oldest complete ones are forgotten first.
pub const MAX_TASKS: usize = 10_000;

/// One update for subscribers: the task it belongs to, whether it ends the
/// task, and the message as sent (`{"kind": "update", "data": ...}`).
#[derive(Debug, Clone)]
pub struct Update {
    /// The task.
    pub task_id: String,
    /// It is the WorkerEvent that completes the task.
    pub completes: bool,
    /// The JSON text.
    pub json: Arc<str>,
}

/// Why a task could not be created.
#[derive(Debug)]
pub enum SubmitError {
    /// No plan has this name (404).
    UnknownPlan(String),
    /// The parameters do not fit the plan (422).
    Invalid(Vec<ArgumentError>),
}

/// Why the environment cannot be reloaded.
#[derive(Debug, PartialEq)]
pub enum ReloadError {
    /// A task is active (409).
    Busy,
    /// The backend cannot load its plans and devices again (409).
    NoFiles,
}

/// Why a task could not start.
#[derive(Debug, PartialEq)]
pub enum BeginError {
    /// Another task is active (409).
    Busy,
    /// No pending task has this id (404).
    NotFound,
    /// The engine thread has stopped.
    EngineGone,
    /// The task is another service's (shared record): only it runs the task.
    Foreign(String),
}

#[derive(Default)]
struct Inner {
    tasks: IndexMap<String, TrackableTask>,
    /// Prepared plans of pending tasks.
    plans: IndexMap<String, Prepared>,
    active: Option<String>,
    /// A deferred pause, an abort or a stop asked for and not yet done.
    transition: Option<WorkerState>,
    /// Counts the state changes asked for (a pause watcher stops at the next).
    requests: u64,
    /// The environment is being reloaded: no task may start.
    reloading: bool,
}

/// The worker the routes talk to.
pub struct Worker {
    backend: Arc<dyn Backend>,
    /// What `GET /environment` says.
    env_state: Mutex<EnvironmentResponse>,
    inner: Mutex<Inner>,
    /// The active task, read by the document subscriber.
    current: Arc<Mutex<Option<String>>>,
    /// The active task's runs and how far they have got.
    progress: Arc<Mutex<Progress>>,
    events: broadcast::Sender<Update>,
    /// Also told every WorkerEvent and ProgressEvent of a task.
    task_events: Option<Arc<TaskEventSink>>,
    /// The task record, if kept.
    record: Option<Box<dyn TaskRecord>>,
}

/// How long a control request may wait for the engine.
const CONTROL_LIMIT: Duration = Duration::from_secs(10);

/// How often a requested pause is looked for.
const PAUSE_POLL: Duration = Duration::from_millis(10);

impl Worker {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        current: Arc<Mutex<Option<String>>>,
        progress: Arc<Mutex<Progress>>,
        events: broadcast::Sender<Update>,
        task_events: Option<Arc<TaskEventSink>>,
        record: Option<OpenedRecord>,
    ) -> Self {
        let (record, kept) = match record {
            Some((record, kept)) => (Some(record), kept),
            None => (None, Vec::new()),
        };
        let worker = Worker {
            backend,
            env_state: Mutex::new(EnvironmentResponse {
                environment_id: uuid::Uuid::new_v4().to_string(),
                initialized: true,
                error_message: None,
            }),
            inner: Mutex::new(Inner::default()),
            current,
            progress,
            events,
            task_events,
            record,
        };
        worker.restore(kept);
        worker
    }

    /// Takes back the tasks of the record: pending ones are prepared again
    /// (and fail, saying why, if their plan no longer fits the devices).
    fn restore(&self, kept: Vec<TrackableTask>) {
        let mut inner = self.inner.lock();
        for mut task in kept {
            if task.is_pending {
                self.prepare_again(&mut inner, &mut task, "the restart");
            }
            inner.tasks.insert(task.task_id.clone(), task);
        }
    }

    /// Prepares pending `task`'s plan again (after `why`), or ends it in
    /// error saying why it no longer fits.
    fn prepare_again(&self, inner: &mut Inner, task: &mut TrackableTask, why: &str) {
        let session = task.task.metadata.get("instrument_session");
        let session = session.and_then(Value::as_str).unwrap_or_default();
        match self.prepare(&task.task.name, &task.task.params, session, &task.task_id) {
            Ok(file) => {
                inner.plans.insert(task.task_id.clone(), file);
            }
            Err(errors) => {
                let msg = format!(
                    "the task's plan no longer fits after {why}: {}",
                    errors
                        .iter()
                        .map(|e| e.msg.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                inner.plans.shift_remove(&task.task_id);
                task.is_pending = false;
                task.is_complete = true;
                task.errors.push(msg.clone());
                task.outcome = Some(Outcome::Error {
                    kind: "ValueError".into(),
                    message: msg,
                });
                self.save(task);
            }
        }
    }

    /// Starts reloading the environment (`DELETE /environment`): the answer
    /// is the current id, not initialized; `GET /environment` tells when
    /// the new one is ready (a new id) or why it is not (`error_message`).
    pub fn reload(self: &Arc<Self>) -> Result<EnvironmentResponse, ReloadError> {
        // Lazy: nothing is loaded unless it is spawned below.
        let load = self.backend.reload().ok_or(ReloadError::NoFiles)?;
        let answer = {
            let mut inner = self.inner.lock();
            if inner.active.is_some() {
                return Err(ReloadError::Busy);
            }
            let mut state = self.env_state.lock();
            state.initialized = false;
            let answer = EnvironmentResponse {
                environment_id: state.environment_id.clone(),
                initialized: false,
                error_message: None,
            };
            if inner.reloading {
                return Ok(answer);
            }
            inner.reloading = true;
            answer
        };
        tokio::spawn(self.clone().finish_reload(load));
        Ok(answer)
    }

    /// Waits for the backend's reload, then prepares the pending tasks again.
    async fn finish_reload(self: Arc<Self>, load: super::backend::BoxFuture<Result<(), String>>) {
        let error = match load.await {
            Err(msg) => Some(msg),
            Ok(()) => {
                let mut inner = self.inner.lock();
                let pending: Vec<String> = inner
                    .tasks
                    .values()
                    .filter(|t| t.is_pending)
                    .map(|t| t.task_id.clone())
                    .collect();
                for id in pending {
                    if let Some(mut task) = inner.tasks.get(&id).cloned() {
                        self.prepare_again(&mut inner, &mut task, "the reload");
                        inner.tasks.insert(id, task);
                    }
                }
                None
            }
        };
        let mut inner = self.inner.lock();
        *self.env_state.lock() = EnvironmentResponse {
            environment_id: uuid::Uuid::new_v4().to_string(),
            initialized: error.is_none(),
            error_message: error,
        };
        inner.reloading = false;
    }

    /// Records `task`, if the record is kept.
    fn save(&self, task: &TrackableTask) {
        if let Some(record) = &self.record {
            record.save(task);
        }
    }

    /// The plan of a task, its metadata added (`Err`: what does not fit).
    fn prepare(
        &self,
        name: &str,
        params: &Map<String, Value>,
        instrument_session: &str,
        task_id: &str,
    ) -> Result<Prepared, Vec<ArgumentError>> {
        let mut metadata = Map::new();
        metadata.insert("instrument_session".into(), json!(instrument_session));
        metadata.insert("task_id".into(), json!(task_id));
        self.backend.prepare(name, params, &metadata)
    }

    /// The plans, the devices and the engine.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// What `GET /environment` answers.
    pub fn environment(&self) -> EnvironmentResponse {
        self.env_state.lock().clone()
    }

    /// Subscribes to updates (documents and worker events).
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.events.subscribe()
    }

    /// The worker's state, as blueapi names it.
    pub fn state(&self, engine: Option<EngineState>) -> WorkerState {
        let inner = self.inner.lock();
        let active = inner.active.is_some();
        match (engine, inner.transition) {
            (None, _) => WorkerState::Unknown,
            (Some(EngineState::Paused), Some(t)) if t != WorkerState::Pausing => t,
            (Some(EngineState::Paused), _) => WorkerState::Paused,
            (Some(_), Some(t)) if active => t,
            (Some(EngineState::Running), _) => WorkerState::Running,
            (Some(EngineState::Idle), _) if active => WorkerState::Running,
            (Some(EngineState::Idle), _) => WorkerState::Idle,
        }
    }

    /// The engine's state, asked of the engine (`None`: it did not answer within `limit`).
    pub async fn engine_state(&self, limit: Duration) -> Option<EngineState> {
        self.backend.ping(limit).await
    }

    /// Creates a pending task.
    pub fn submit(&self, req: TaskRequest, user: Option<String>) -> Result<String, SubmitError> {
        if !self.backend.has_plan(&req.name) {
            return Err(SubmitError::UnknownPlan(req.name));
        }
        let task_id = uuid::Uuid::new_v4().to_string();
        let file = self
            .prepare(&req.name, &req.params, &req.instrument_session, &task_id)
            .map_err(SubmitError::Invalid)?;
        let mut metadata = Map::new();
        metadata.insert("user".into(), user.map_or(Value::Null, Value::String));
        metadata.insert("instrument_session".into(), json!(req.instrument_session));
        let task = TrackableTask {
            task_id: task_id.clone(),
            task: Task {
                name: req.name,
                params: req.params,
                metadata,
            },
            request_id: None,
            is_complete: false,
            is_pending: true,
            errors: Vec::new(),
            outcome: None,
        };
        let mut inner = self.inner.lock();
        while inner.tasks.len() >= MAX_TASKS {
            let oldest = inner
                .tasks
                .iter()
                .find(|(_, t)| t.is_complete)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    inner.tasks.shift_remove(&k);
                    if let Some(record) = &self.record {
                        record.delete(&k);
                    }
                }
                None => break,
            }
        }
        self.save(&task);
        inner.tasks.insert(task_id.clone(), task);
        inner.plans.insert(task_id.clone(), file);
        Ok(task_id)
    }

    /// The active task's id.
    pub fn active(&self) -> Option<String> {
        self.inner.lock().active.clone()
    }

    /// Starts pending task `id` under `parent` (the client's trace context).
    pub fn begin(self: &Arc<Self>, id: &str, parent: Context) -> Result<(), BeginError> {
        let (file, plan_name) = {
            let mut inner = self.inner.lock();
            if inner.active.is_some() || inner.reloading {
                return Err(BeginError::Busy);
            }
            if !inner.tasks.contains_key(id) {
                if let Some(peer) = self.record.as_ref().and_then(|s| s.peer(id)) {
                    return Err(BeginError::Foreign(peer.service));
                }
            }
            let Some(task) = inner.tasks.get_mut(id).filter(|t| t.is_pending) else {
                return Err(BeginError::NotFound);
            };
            task.is_pending = false;
            let plan_name = task.task.name.clone();
            self.save(task);
            let Some(file) = inner.plans.shift_remove(id) else {
                return Err(BeginError::NotFound);
            };
            inner.active = Some(id.to_owned());
            inner.transition = None;
            (file, plan_name)
        };
        self.progress.lock().clear();
        *self.current.lock() = Some(id.to_owned());
        let (done, ended) = oneshot::channel();
        let sent = self.backend.run(Job {
            task_id: id.to_owned(),
            plan_name,
            prepared: file,
            parent,
            done,
        });
        if !sent {
            self.finish(id, None);
            return Err(BeginError::EngineGone);
        }
        self.publish(id, WorkerState::Running, false);
        let (me, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            let ended = ended.await.ok();
            me.finish(&id, ended);
        });
        Ok(())
    }

    /// Records how task `id` ended and tells the subscribers.
    fn finish(&self, id: &str, ended: Option<Ended>) {
        {
            let mut inner = self.inner.lock();
            if let Some(task) = inner.tasks.get_mut(id) {
                task.is_complete = true;
                task.is_pending = false;
                task.outcome = Some(match &ended {
                    Some(e) if e.exit_status == ExitStatus::Success => {
                        let (result, kind) = e
                            .result
                            .clone()
                            .unwrap_or_else(|| (Value::Null, "NoneType".into()));
                        Outcome::Success { result, kind }
                    }
                    Some(e) => {
                        task.errors.push(e.reason.clone());
                        Outcome::Error {
                            kind: e
                                .error_type
                                .clone()
                                .unwrap_or_else(|| "RunEngineError".into()),
                            message: e.reason.clone(),
                        }
                    }
                    None => {
                        let msg = "the engine stopped before the task ended".to_owned();
                        task.errors.push(msg.clone());
                        Outcome::Error {
                            kind: "RunEngineError".into(),
                            message: msg,
                        }
                    }
                });
                self.save(task);
            }
            inner.active = None;
            inner.transition = None;
            if let Some(record) = &self.record {
                if record.wants_compaction(inner.tasks.len()) {
                    record.compact(&inner.tasks.values().cloned().collect::<Vec<_>>());
                }
            }
        }
        *self.current.lock() = None;
        self.progress.lock().clear();
        self.publish(id, WorkerState::Idle, true);
    }

    /// Asks for `new` (blueapi's `PUT /worker/state`); `Err` is the 400's detail.
    pub async fn set_state(
        self: &Arc<Self>,
        new: WorkerState,
        defer: bool,
        reason: Option<String>,
    ) -> Result<(), String> {
        let engine = self.engine_state(CONTROL_LIMIT).await;
        let current = self.state(engine);
        let allowed = matches!(
            (current, new),
            (
                WorkerState::Running,
                WorkerState::Paused | WorkerState::Aborting | WorkerState::Stopping
            ) | (
                WorkerState::Paused,
                WorkerState::Running | WorkerState::Aborting | WorkerState::Stopping
            )
        );
        if !allowed {
            return Err(format!(
                "Cannot transition from {} to {}",
                current.as_str(),
                new.as_str()
            ));
        }
        let (req, transition) = match new {
            WorkerState::Paused => (
                ControlReq::Pause { defer },
                defer.then_some(WorkerState::Pausing),
            ),
            WorkerState::Running => (ControlReq::Resume, None),
            WorkerState::Aborting => (
                ControlReq::Abort(
                    reason.unwrap_or_else(|| "Task failed for unknown reason".into()),
                ),
                Some(WorkerState::Aborting),
            ),
            _ => (ControlReq::Stop, Some(WorkerState::Stopping)),
        };
        self.backend
            .control(req, CONTROL_LIMIT)
            .await
            .map_err(|e| {
                format!(
                    "Error while transitioning from {} to {} - {e}",
                    current.as_str(),
                    new.as_str()
                )
            })?;
        let (id, request) = {
            let mut inner = self.inner.lock();
            if inner.active.is_some() {
                inner.transition = transition;
            }
            inner.requests += 1;
            (inner.active.clone(), inner.requests)
        };
        if new == WorkerState::Running {
            self.progress.lock().resume(Instant::now());
        }
        if let Some(id) = id {
            let state = self.state(self.engine_state(CONTROL_LIMIT).await);
            if state == WorkerState::Paused {
                self.progress.lock().pause(Instant::now());
            }
            self.publish(&id, state, false);
            if new == WorkerState::Paused && state != WorkerState::Paused {
                tokio::spawn(self.clone().tell_when_paused(id, request));
            }
        }
        Ok(())
    }

    /// The engine pauses at the plan's next message (or checkpoint, when
    /// deferred), after the request is answered: watches for it and
    /// publishes the WorkerEvent saying PAUSED, as long as task `id` runs
    /// and no other change (`request` was the pause's) is asked for.
    async fn tell_when_paused(self: Arc<Self>, id: String, request: u64) {
        let current = |w: &Self| {
            let inner = w.inner.lock();
            inner.active.as_deref() == Some(id.as_str()) && inner.requests == request
        };
        let mut tick = tokio::time::interval(PAUSE_POLL);
        while current(&self) {
            tick.tick().await;
            if self.engine_state(CONTROL_LIMIT).await == Some(EngineState::Paused) {
                if current(&self) {
                    self.progress.lock().pause(Instant::now());
                    let state = self.state(Some(EngineState::Paused));
                    self.publish(&id, state, false);
                }
                return;
            }
        }
    }

    /// Aborts the active task, if it is `id` (a WebSocket client went away).
    pub async fn abort_if_active(&self, id: &str, reason: &str) {
        if self.active().as_deref() == Some(id) {
            let _ = self
                .backend
                .control(ControlReq::Abort(reason.to_owned()), CONTROL_LIMIT)
                .await;
        }
    }
}
