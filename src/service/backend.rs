//! What the service serves: a [`Backend`] offers plans and devices, turns a
//! task's parameters into something it can run (or says, as pydantic does,
//! what is wrong with them), runs it on its RunEngine, and takes the
//! worker's control requests. The routes and the [`Worker`](super::Worker)
//! (blueapi's API, the task life cycle, the task record) are one
//! implementation over any backend:
//!
//! * [`FileBackend`](super::FileBackend) (`skyrun service`): the devices of
//!   a device file and the plans of a [`Catalog`](super::Catalog), on an
//!   engine thread of its own;
//! * the Python package's (`python -m skyrun service`): Python plan
//!   functions and Python devices, on skyrun's Python RunEngine.
//!
//! A backend also gives every task the same trace shape ([`TaskSpan`]): a
//! span `task` under the client's context, parenting the run.
//!
//! ```
//! use skyrun::service::{Ended, TaskSpan};
//! use skyrun::ExitStatus;
//! use skyrun_actors::SpanTracer;
//! let parent = opentelemetry::Context::new();
//! let (span, _run_parent) = TaskSpan::start(&SpanTracer::disabled(), &parent, "t1", "count");
//! span.end(&Ended::success());
//! ```

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use serde_json::{Map, Value};
use skyrun_actors::{ActiveSpan, SpanTracer};
use tokio::sync::oneshot;

use super::model::{ArgumentError, DeviceModel, PlanModel};
use crate::run_engine::EngineState;
use crate::{Document, ExitStatus, RunError, RunSummary};

/// A future a backend answers with (sendable, so the routes can await it).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A task ready to run, as the backend that prepared it made it; the worker
/// keeps it until the task starts and hands it back to the same backend.
pub type Prepared = Box<dyn Any + Send>;

/// A document subscriber: called with every document of the backend's engine.
pub type DocumentSink = Box<dyn FnMut(&str, &Document) + Send>;

/// A subscriber to the tasks' documents: called with the task's id, the
/// document's name and the document, for every document of a task.
pub type TaskDocumentSink = Box<dyn FnMut(&str, &str, &Document) + Send>;

/// A subscriber to the tasks' events: called with the task's id, the
/// event's kind (`worker_event` or `progress_event`) and the event as
/// blueapi's JSON (`WorkerEvent`, `ProgressEvent`), for every event of a task.
pub type TaskEventSink = Box<dyn Fn(&str, &str, &str) + Send + Sync>;

/// How a task's plan ended, as the engine tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The runs' exit status.
    pub exit_status: ExitStatus,
    /// Why it did not succeed (empty on success).
    pub reason: String,
    /// Bluesky's name for what failed (`FailedStatus`, `RequestAbort`, ...), when it did.
    pub error_type: Option<String>,
    /// What the plan returned, as JSON, and its Python type name (`None`: it
    /// returned nothing, blueapi's `null` of type `NoneType`).
    pub result: Option<(Value, String)>,
}

impl Ended {
    /// A plan that succeeded and returned nothing.
    pub fn success() -> Self {
        Ended {
            exit_status: ExitStatus::Success,
            reason: String::new(),
            error_type: None,
            result: None,
        }
    }

    /// A task that failed before its plan ran (`kind` is the error's type name).
    pub fn failed(kind: impl Into<String>, reason: impl Into<String>) -> Self {
        Ended {
            exit_status: ExitStatus::Fail,
            reason: reason.into(),
            error_type: Some(kind.into()),
            result: None,
        }
    }

    /// How a run of the RunEngine ended.
    pub fn from_run(r: Result<RunSummary, RunError>) -> Self {
        let with = |summary: RunSummary, kind: Option<String>| Ended {
            exit_status: summary.exit_status,
            reason: summary.reason,
            error_type: kind,
            result: None,
        };
        match r {
            Ok(s) => with(s, None),
            Err(RunError::Failed { error, summary }) => {
                with(summary, Some(error.kind().to_owned()))
            }
            Err(RunError::Aborted { summary }) => with(summary, Some("RequestAbort".into())),
            Err(e) => Ended::failed("RunEngineError", e.to_string()),
        }
    }
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

/// One task to run.
pub struct Job {
    /// The task's id.
    pub task_id: String,
    /// Its plan's name.
    pub plan_name: String,
    /// What [`Backend::prepare`] made of its parameters.
    pub prepared: Prepared,
    /// The client's trace context (the parent of the task's span).
    pub parent: Context,
    /// Where to say how it ended.
    pub done: oneshot::Sender<Ended>,
}

/// The plans, the devices and the engine the service serves.
pub trait Backend: Send + Sync + 'static {
    /// The plans, with the JSON schema of their parameters (`GET /plans`).
    fn plans(&self) -> Vec<PlanModel>;

    /// Whether a plan is called `name`.
    fn has_plan(&self, name: &str) -> bool {
        self.plans().iter().any(|p| p.name == name)
    }

    /// The devices (`GET /devices`).
    fn devices(&self) -> Vec<DeviceModel>;

    /// Checks `params` against plan `name`'s schema and makes the task to
    /// run, its runs carrying `metadata` (`instrument_session`, `task_id`);
    /// `Err` lists every problem (as pydantic's errors, `loc` from `body`).
    fn prepare(
        &self,
        name: &str,
        params: &Map<String, Value>,
        metadata: &Map<String, Value>,
    ) -> Result<Prepared, Vec<ArgumentError>>;

    /// Starts `job`; `false` if the engine has stopped (`job.done` is then dropped).
    fn run(&self, job: Job) -> bool;

    /// Asks the engine for `req`, waiting at most `limit`; `Err` says why not.
    fn control(&self, req: ControlReq, limit: Duration) -> BoxFuture<Result<(), String>>;

    /// The engine's state, asked of the engine itself (so a stuck engine
    /// does not answer); `None` after `limit`.
    fn ping(&self, limit: Duration) -> BoxFuture<Option<EngineState>>;

    /// Loads the plans and devices again (`DELETE /environment`, no task
    /// runs); `None`: this backend cannot; `Err` says what is wrong (the
    /// backend goes on with what it had).
    fn reload(&self) -> Option<BoxFuture<Result<(), String>>> {
        None
    }
}

/// A task's span `task` (attributes `task_id`, `plan_name`; at its end the
/// exit status, and the reason when it did not succeed).
pub struct TaskSpan(Option<ActiveSpan>);

impl TaskSpan {
    /// Starts the span under `parent`; returns it and the context the run
    /// starts under (the span's, as a remote context, so the engine's
    /// one-trace-per-run parenting puts the run span under it).
    pub fn start(
        tracer: &SpanTracer,
        parent: &Context,
        task_id: &str,
        plan_name: &str,
    ) -> (TaskSpan, Context) {
        let span = tracer.start(
            "task",
            parent,
            vec![
                KeyValue::new("task_id", task_id.to_owned()),
                KeyValue::new("plan_name", plan_name.to_owned()),
            ],
        );
        let run_parent = match &span {
            Some(s) => crate::telemetry::spans::remote_parent(s.span_context()),
            None => parent.clone(),
        };
        (TaskSpan(span), run_parent)
    }

    /// Ends the span with how the task ended.
    pub fn end(self, ended: &Ended) {
        if let Some(mut s) = self.0 {
            s.set_attribute(KeyValue::new("exit_status", ended.exit_status.as_str()));
            if ended.exit_status != ExitStatus::Success {
                s.set_attribute(KeyValue::new("reason", ended.reason.clone()));
                s.set_status(SpanStatus::error(ended.reason.clone()));
            }
            s.end();
        }
    }
}
