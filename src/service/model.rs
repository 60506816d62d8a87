//! The shapes of blueapi 1.21.1's REST API (its pydantic models, as its
//! `openapi.json` and its client read them): what `skyrun::service` answers
//! and accepts. blueapi's client validates every answer strictly (extra
//! keys are refused), so these carry exactly blueapi's fields.
//!
//! ```
//! use skyrun::service::model::{WorkerState, TaskResponse};
//! assert_eq!(serde_json::to_string(&WorkerState::Paused).unwrap(), "\"PAUSED\"");
//! let r = TaskResponse { task_id: "t1".into() };
//! assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::json!({"task_id": "t1"}));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The worker's state (blueapi's `WorkerState`, upper case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum WorkerState {
    Idle,
    Running,
    Pausing,
    Paused,
    Halting,
    Stopping,
    Aborting,
    Suspending,
    Panicked,
    Unknown,
}

impl WorkerState {
    /// The name on the wire (`PAUSED`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Idle => "IDLE",
            WorkerState::Running => "RUNNING",
            WorkerState::Pausing => "PAUSING",
            WorkerState::Paused => "PAUSED",
            WorkerState::Halting => "HALTING",
            WorkerState::Stopping => "STOPPING",
            WorkerState::Aborting => "ABORTING",
            WorkerState::Suspending => "SUSPENDING",
            WorkerState::Panicked => "PANICKED",
            WorkerState::Unknown => "UNKNOWN",
        }
    }
}

/// `PUT /worker/state`'s body (`StateChangeRequest`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateChangeRequest {
    /// The state asked for.
    pub new_state: WorkerState,
    /// Pause at the next checkpoint instead of now.
    #[serde(default)]
    pub defer: bool,
    /// Why the task is aborted.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /tasks`'s body (`TaskRequest`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// The plan's name.
    pub name: String,
    /// The plan's parameters.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// The instrument session the task belongs to.
    pub instrument_session: String,
}

/// `POST /tasks`'s answer and `DELETE /tasks/{id}`'s (`TaskResponse`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResponse {
    /// The task's id.
    pub task_id: String,
}

/// `PUT /worker/task`'s body and answer, `GET /worker/task`'s (`WorkerTask`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerTask {
    /// The active task, `null` when the worker is idle.
    pub task_id: Option<String>,
}

/// A task as blueapi's worker holds it (`Task`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// The plan's name.
    pub name: String,
    /// The plan's parameters.
    pub params: Map<String, Value>,
    /// Metadata for every run of the task (`instrument_session`, `user`).
    pub metadata: Map<String, Value>,
}

/// How a task ended: blueapi's `TaskResult` or `TaskError`, told apart by `outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// The plan succeeded (`TaskResult`): skyrun's plans return nothing,
    /// so `result` is `null` and `type` is `NoneType`, as blueapi says of a
    /// plan that returns `None`.
    Success {
        /// The plan's result.
        result: Value,
        /// Its Python type name.
        #[serde(rename = "type")]
        kind: String,
    },
    /// The plan failed or was aborted (`TaskError`).
    Error {
        /// The kind of failure (Bluesky's exception names: `FailedStatus`,
        /// `RequestAbort`, ...).
        #[serde(rename = "type")]
        kind: String,
        /// What went wrong (an abort's reason).
        message: String,
    },
}

/// A task and how far it got (`TrackableTask`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackableTask {
    /// The task's id.
    pub task_id: String,
    /// The task.
    pub task: Task,
    /// The request that made it (`null`: skyrun does not keep one).
    pub request_id: Option<String>,
    /// The task has ended.
    pub is_complete: bool,
    /// The task has not started.
    pub is_pending: bool,
    /// Errors while it ran.
    pub errors: Vec<String>,
    /// How it ended.
    pub outcome: Option<Outcome>,
}

/// `GET /tasks`'s answer (`TasksListResponse`).
#[derive(Debug, Clone, Serialize)]
pub struct TasksListResponse {
    /// The tasks, oldest first.
    pub tasks: Vec<TrackableTask>,
}

/// A plan (`PlanModel`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanModel {
    /// Its name.
    pub name: String,
    /// Its docstring.
    pub description: Option<String>,
    /// The JSON schema of its parameters.
    pub schema: Value,
}

/// `GET /plans`'s answer (`PlanResponse`).
#[derive(Debug, Clone, Serialize)]
pub struct PlanResponse {
    /// The plans.
    pub plans: Vec<PlanModel>,
}

/// A protocol a device follows (`ProtocolInfo`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtocolInfo {
    /// Bluesky's protocol name (`Readable`, `Movable`, ...).
    pub name: String,
    /// Its type arguments (`["float"]` for `Movable[float]`).
    pub types: Vec<String>,
}

/// A device (`DeviceModel`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceModel {
    /// Its name.
    pub name: String,
    /// The protocols it follows.
    pub protocols: Vec<ProtocolInfo>,
}

/// `GET /devices`'s answer (`DeviceResponse`).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceResponse {
    /// The devices.
    pub devices: Vec<DeviceModel>,
}

/// `GET /environment`'s answer (`EnvironmentResponse`).
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentResponse {
    /// Changes when the environment is reloaded.
    pub environment_id: String,
    /// The devices and plans are loaded.
    pub initialized: bool,
    /// Why they could not be (absent when they were).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The state of a task, inside a [`WorkerEvent`] (`TaskStatus`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    /// The task.
    pub task_id: String,
    /// How it ended, once it has.
    pub result: Option<Outcome>,
    /// It has ended.
    pub task_complete: bool,
    /// It has failed.
    pub task_failed: bool,
}

/// The worker's state changed, or a task did (`WorkerEvent`).
#[derive(Debug, Clone, Serialize)]
pub struct WorkerEvent {
    /// The worker's state.
    pub state: WorkerState,
    /// The task's.
    pub task_status: Option<TaskStatus>,
    /// Errors.
    pub errors: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// A document of the task's runs (`DataEvent`).
#[derive(Debug, Clone, Serialize)]
pub struct DataEvent {
    /// The document's name (`start`, `event`, ...).
    pub name: String,
    /// The document.
    pub doc: Value,
    /// The task it belongs to.
    pub task_id: String,
}

/// One parameter error of a 422 (`ArgumentError`, FastAPI's `detail` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArgumentError {
    /// Where: `["body", "params", FIELD, ...]`.
    pub loc: Vec<Value>,
    /// What is wrong.
    pub msg: String,
    /// pydantic's error type (`missing`, `extra_forbidden`, `int_type`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value given (`null` when missing).
    pub input: Value,
}

/// A snapshot of one operation's progress (`StatusView`). skyrun reports
/// one per run of the task: points done of the plan's `num_points`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// What it describes (the run's plan name).
    pub display_name: String,
    /// Where it is (points done).
    pub current: Option<f64>,
    /// Where it started (0).
    pub initial: Option<f64>,
    /// Where it is going (the plan's `num_points`, when it says).
    pub target: Option<f64>,
    /// The unit of `current` and `target` (`points`).
    pub unit: String,
    /// Digits worth showing.
    pub precision: Option<i32>,
    /// It has ended.
    pub done: bool,
    /// How much is done, as a fraction in `[0, 1]` (blueapi's meaning, despite the name).
    pub percentage: Option<f64>,
    /// Seconds since it began, less any time paused.
    pub time_elapsed: Option<f64>,
    /// Seconds left at the recent pace.
    pub time_remaining: Option<f64>,
}

/// The progress of the task's operations (`ProgressEvent`).
#[derive(Debug, Clone, Serialize)]
pub struct ProgressEvent {
    /// The task.
    pub task_id: String,
    /// Each operation under way (and one that just ended), by id.
    pub statuses: indexmap::IndexMap<String, StatusView>,
}
