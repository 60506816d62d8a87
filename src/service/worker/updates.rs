//! What the worker tells about a task: each document of the active task as
//! a `DataEvent` and, when it moves the task on, a `ProgressEvent`; each
//! change of state as a `WorkerEvent`. They go to the WebSocket route's
//! subscribers (as `{"kind": "update", "data": ...}`) and, WorkerEvents and
//! ProgressEvents, to the task event sink (`skyrun service --nats`), as
//! blueapi's JSON with the task's id.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::{Update, Worker};
use crate::service::backend::{TaskDocumentSink, TaskEventSink};
use crate::service::model::{DataEvent, ProgressEvent, TaskStatus, WorkerEvent, WorkerState};
use crate::service::progress::Progress;
use crate::Document;

impl Worker {
    /// The document subscriber: each document of the active task as a
    /// `DataEvent`, and, when it moves the task on, a `ProgressEvent`.
    pub(crate) fn document_sink(
        current: Arc<Mutex<Option<String>>>,
        progress: Arc<Mutex<Progress>>,
        events: broadcast::Sender<Update>,
        mut task_documents: Option<TaskDocumentSink>,
        task_events: Option<Arc<TaskEventSink>>,
    ) -> impl FnMut(&str, &Document) + Send {
        move |name, doc| {
            let Some(task_id) = current.lock().clone() else {
                return;
            };
            if let Some(sink) = task_documents.as_mut() {
                sink(&task_id, name, doc);
            }
            let doc = serde_json::to_value(doc).unwrap_or(Value::Null);
            let statuses = progress.lock().document(name, &doc, Instant::now());
            let moved = statuses.map(|statuses| ProgressEvent {
                task_id: task_id.clone(),
                statuses,
            });
            if let (Some(sink), Some(event)) = (&task_events, &moved) {
                tell(sink, &task_id, "progress_event", event);
            }
            if events.receiver_count() == 0 {
                return;
            }
            let event = DataEvent {
                name: name.to_owned(),
                doc,
                task_id: task_id.clone(),
            };
            let _ = events.send(update(&task_id, false, &event));
            if let Some(event) = moved {
                let _ = events.send(update(&task_id, false, &event));
            }
        }
    }

    /// Sends a WorkerEvent for task `id`.
    pub(super) fn publish(&self, id: &str, state: WorkerState, completes: bool) {
        let event = self.worker_event(id, state);
        if let Some(sink) = &self.task_events {
            tell(sink, id, "worker_event", &event);
        }
        let _ = self.events.send(update(id, completes, &event));
    }

    /// The WorkerEvent that says task `id` has ended (for a subscriber that
    /// missed it).
    pub fn completion(&self, id: &str) -> Arc<str> {
        update(id, true, &self.worker_event(id, WorkerState::Idle)).json
    }

    fn worker_event(&self, id: &str, state: WorkerState) -> WorkerEvent {
        let task = self.task(id);
        let status = task.as_ref().map(|t| TaskStatus {
            task_id: t.task_id.clone(),
            result: t.outcome.clone(),
            task_complete: t.is_complete,
            task_failed: !t.errors.is_empty(),
        });
        WorkerEvent {
            state,
            task_status: status,
            errors: task.map(|t| t.errors).unwrap_or_default(),
            warnings: Vec::new(),
        }
    }
}

/// Gives `event` (of kind `kind`) of task `task_id` to `sink` as JSON.
fn tell(sink: &TaskEventSink, task_id: &str, kind: &str, event: &impl serde::Serialize) {
    if let Ok(json) = serde_json::to_string(event) {
        sink(task_id, kind, &json);
    }
}

/// The update of task `task_id` carrying `data`.
fn update(task_id: &str, completes: bool, data: &impl serde::Serialize) -> Update {
    let json = json!({"kind": "update", "data": data}).to_string();
    Update {
        task_id: task_id.to_owned(),
        completes,
        json: json.into(),
    }
}
