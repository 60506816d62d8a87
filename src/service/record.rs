//! The task record: where the service keeps its tasks and their outcomes so
//! that a restart lists them ([`TaskRecord`]). Two kinds ship:
//!
//! * [`TaskStore`](super::TaskStore) (`store.rs`): one JSON-lines file in
//!   the service's state folder, the default of `skyrun service`;
//! * [`SharedRecord`](super::SharedRecord) (`shared.rs`): a key-value
//!   bucket several services share (`skyrun service --nats`: a JetStream
//!   key-value bucket), each task recorded with the service that owns it.
//!
//! A record is written from the worker while it holds its own lock: `save`
//! and `delete` must return at once (queue, never wait on a peer), and say
//! a failure themselves (on stderr), since the task goes on regardless.
//!
//! ```
//! use skyrun::service::{TaskRecord, TaskStore};
//! # let dir = std::env::temp_dir().join(format!("skyrun-record-doc-{}", std::process::id()));
//! let (store, kept) = TaskStore::open(&dir).unwrap();
//! let record: Box<dyn TaskRecord> = Box::new(store);
//! assert!(kept.is_empty() && record.peers().is_empty());
//! assert!(record.describe().starts_with("tasks kept in "));
//! # drop(record); std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::path::PathBuf;

use super::model::TrackableTask;

/// A task recorded by another service sharing the record.
#[derive(Debug, Clone)]
pub struct PeerTask {
    /// The service that owns (and alone runs) the task.
    pub service: String,
    /// The task as that service last recorded it (ended as lost when the
    /// service is presumed gone while the task ran).
    pub task: TrackableTask,
}

/// Where the tasks are kept (see the module documentation).
pub trait TaskRecord: Send + Sync {
    /// Records `task` as it is now (returns at once).
    fn save(&self, task: &TrackableTask);

    /// Records that task `id` was deleted (returns at once).
    fn delete(&self, id: &str);

    /// Whether the record has grown enough past `live` tasks to be rewritten.
    fn wants_compaction(&self, live: usize) -> bool {
        let _ = live;
        false
    }

    /// Rewrites the record with `tasks` only.
    fn compact(&self, tasks: &[TrackableTask]) {
        let _ = tasks;
    }

    /// The tasks of the other services sharing the record, oldest first
    /// (none for a record of one service).
    fn peers(&self) -> Vec<PeerTask> {
        Vec::new()
    }

    /// Task `id` of another service sharing the record, if there is one.
    fn peer(&self, id: &str) -> Option<PeerTask> {
        self.peers().into_iter().find(|p| p.task.task_id == id)
    }

    /// Where the tasks are kept, for the service's start-up line.
    fn describe(&self) -> String;
}

/// A record, opened, and the tasks it held for this service (oldest first;
/// a task that was running when the service stopped comes back ended as
/// lost, saying when).
pub type OpenedRecord = (Box<dyn TaskRecord>, Vec<TrackableTask>);

/// Why a task record could not be opened.
///
/// ```
/// use skyrun::service::RecordError;
/// let e = RecordError::Shared("invalid service id 'a b'".into());
/// assert_eq!(e.to_string(), "shared task record: invalid service id 'a b'");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file (or its folder) could not be read or written.
    #[error("task record {path}: {source}")]
    File {
        /// The file (or folder).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The shared record could not be used.
    #[error("shared task record: {0}")]
    Shared(String),
}

/// The outcome of a task found lost: `why`, said in its errors and outcome.
pub(crate) fn mark_lost(task: &mut TrackableTask, why: String) {
    task.is_pending = false;
    task.is_complete = true;
    task.errors.push(why.clone());
    task.outcome = Some(super::model::Outcome::Error {
        kind: "TaskLost".into(),
        message: why,
    });
}

/// Now, as the records write it (RFC 3339, milliseconds, UTC).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
