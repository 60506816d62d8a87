//! The worker's task list: its own tasks, then, with a record shared by
//! several services, the other services' tasks (listed and shown, never
//! run, changed or deleted here: only their owner does that).

use super::Worker;
use crate::service::model::TrackableTask;

/// Whether `t` has blueapi's task status `status` (PENDING, RUNNING,
/// COMPLETE, ERROR; `None`: any).
fn has_status(t: &TrackableTask, status: Option<&str>) -> bool {
    match status {
        None => true,
        Some("PENDING") => t.is_pending,
        Some("RUNNING") => !t.is_pending && !t.is_complete,
        Some("COMPLETE") => t.is_complete && t.errors.is_empty(),
        Some("ERROR") => t.is_complete && !t.errors.is_empty(),
        Some(_) => false,
    }
}

impl Worker {
    /// Every task, oldest first, this service's before its peers'
    /// (optionally those with blueapi status `status`: PENDING, RUNNING,
    /// COMPLETE, ERROR).
    pub fn tasks(&self, status: Option<&str>) -> Vec<TrackableTask> {
        let mut tasks: Vec<TrackableTask> = {
            let inner = self.inner.lock();
            inner
                .tasks
                .values()
                .filter(|t| has_status(t, status))
                .cloned()
                .collect()
        };
        if let Some(record) = &self.record {
            let peers = record.peers();
            if !peers.is_empty() {
                let inner = self.inner.lock();
                tasks.extend(
                    peers
                        .into_iter()
                        .map(|p| p.task)
                        .filter(|t| !inner.tasks.contains_key(&t.task_id))
                        .filter(|t| has_status(t, status)),
                );
            }
        }
        tasks
    }

    /// One task, this service's or a peer's.
    pub fn task(&self, id: &str) -> Option<TrackableTask> {
        if let Some(t) = self.inner.lock().tasks.get(id) {
            return Some(t.clone());
        }
        self.record.as_ref()?.peer(id).map(|p| p.task)
    }

    /// Forgets a task of this service that is not active; `None` if there
    /// is no such task; `Err` says why it stays (active, or a peer's).
    pub fn clear(&self, id: &str) -> Option<Result<String, String>> {
        let mut inner = self.inner.lock();
        if inner.active.as_deref() == Some(id) {
            return Some(Err("the task is active: abort or stop it first".into()));
        }
        inner.plans.shift_remove(id);
        let Some(task) = inner.tasks.shift_remove(id) else {
            drop(inner);
            let peer = self.record.as_ref()?.peer(id)?;
            return Some(Err(format!(
                "the task belongs to service '{}': delete it there",
                peer.service
            )));
        };
        if let Some(record) = &self.record {
            record.delete(id);
        }
        Some(Ok(task.task_id))
    }
}
