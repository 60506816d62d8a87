//! A task record several services share ([`SharedRecord`]), over a
//! key-value [`Bucket`] (`skyrun service --nats`: a JetStream key-value
//! bucket, `skyrun_tasks` by default).
//!
//! Keys: `task.<task id>` holds `{"service", "created", "at", "task"}`
//! (the owner, when the task was created and last recorded, and the task as
//! blueapi's `TrackableTask`); `service.<service id>` is the owner's
//! heartbeat, put every [`HEARTBEAT`] while it runs and deleted when it
//! stops.
//!
//! Who decides that a task is lost:
//!
//! * **its owner**, at its restart (same service id): a task of its own that
//!   was running is recorded ended as lost, with the time it was last
//!   recorded and the time of the restart, for everyone;
//! * **a peer**, only in what it answers: a running task whose owner's
//!   heartbeat has not been seen for [`PRESUMED_GONE`] (or was deleted) is
//!   listed ended as lost, saying since when the owner is silent; nothing is
//!   written, the owner may still come back. While the peer's own view of the
//!   bucket is not live (its NATS connection is down), tasks are listed as
//!   last seen, never presumed lost.
//!
//! Only the owner runs, deletes or changes a task; peers list it. Two
//! services with one id would take each other's tasks: [`SharedRecord::open`]
//! refuses an id whose heartbeat is recent and goes on (a running service),
//! and waits at most two heartbeats to tell (a service killed a moment ago
//! puts no more, and is taken over).
//!
//! ```
//! use std::sync::Arc;
//! use skyrun::service::model::TrackableTask;
//! use skyrun::service::{MemoryBucket, SharedRecord, TaskRecord};
//! let bucket = Arc::new(MemoryBucket::default());
//! let (a, kept) = SharedRecord::open(bucket.clone(), "svc-a").unwrap();
//! let (b, _) = SharedRecord::open(bucket.clone(), "svc-b").unwrap();
//! assert!(kept.is_empty() && b.peers().is_empty());
//! let task: TrackableTask = serde_json::from_value(serde_json::json!({
//!     "task_id": "t1", "task": {"name": "count", "params": {}, "metadata": {}},
//!     "request_id": null, "is_complete": false, "is_pending": false,
//!     "errors": [], "outcome": null,
//! }))
//! .unwrap();
//! a.save(&task); // running on svc-a
//! let seen = b.peers();
//! assert_eq!((seen[0].service.as_str(), seen[0].task.is_complete), ("svc-a", false));
//! assert!(a.peers().is_empty(), "a service's own tasks are not its peers'");
//! drop(a); // svc-a stops without ending its task: svc-b presumes it lost
//! assert_eq!(b.peer("t1").unwrap().task.errors.len(), 1);
//! // svc-a again: its task comes back ended as lost, and is recorded so.
//! let (_a, kept) = SharedRecord::open(bucket, "svc-a").unwrap();
//! assert!(kept[0].errors[0].starts_with("the service stopped while the task was running"));
//! assert!(SharedRecord::open(Arc::new(MemoryBucket::default()), "a b").is_err());
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{bounded, Sender};
use indexmap::IndexMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::model::TrackableTask;
use super::record::{mark_lost, now, PeerTask, RecordError, TaskRecord};

/// How often a service puts its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A peer whose heartbeat has not been seen for this long is presumed gone.
pub const PRESUMED_GONE: Duration = Duration::from_secs(10);

/// One value of a [`Bucket`], as this process last saw it.
#[derive(Debug, Clone)]
pub struct BucketEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// How long ago this process saw it put.
    pub age: Duration,
}

/// A key-value bucket several processes share, mirrored in this one:
/// `put` and `delete` queue the change and return at once; `entries` reads
/// the local mirror. Keys are dot-separated tokens of letters, digits, `-`
/// and `_`.
pub trait Bucket: Send + Sync {
    /// Puts `value` under `key`.
    fn put(&self, key: &str, value: Vec<u8>);
    /// Deletes `key`.
    fn delete(&self, key: &str);
    /// The entries whose key starts with `prefix`, in the order first seen.
    fn entries(&self, prefix: &str) -> Vec<BucketEntry>;
    /// Whether the mirror follows the bucket now (false: connection lost).
    fn live(&self) -> bool;
    /// What the bucket is, for messages (`JetStream bucket skyrun_tasks at nats://...`).
    fn describe(&self) -> String;
}

/// A [`Bucket`] in this process's memory (tests and examples).
#[derive(Default)]
pub struct MemoryBucket {
    map: Mutex<IndexMap<String, (Vec<u8>, std::time::Instant)>>,
}

impl Bucket for MemoryBucket {
    fn put(&self, key: &str, value: Vec<u8>) {
        self.map
            .lock()
            .insert(key.to_owned(), (value, std::time::Instant::now()));
    }
    fn delete(&self, key: &str) {
        self.map.lock().shift_remove(key);
    }
    fn entries(&self, prefix: &str) -> Vec<BucketEntry> {
        let map = self.map.lock();
        map.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (v, at))| BucketEntry {
                key: k.clone(),
                value: v.clone(),
                age: at.elapsed(),
            })
            .collect()
    }
    fn live(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "an in-memory bucket".into()
    }
}

/// A task as stored under `task.<id>`.
#[derive(Serialize, Deserialize)]
struct Stored {
    service: String,
    created: String,
    at: String,
    task: TrackableTask,
}

/// The heartbeat under `service.<id>`.
#[derive(Serialize, Deserialize)]
struct Beat {
    started: String,
    at: String,
}

/// Whether `id` can be a service id (a key token).
///
/// ```
/// use skyrun::service::valid_service_id;
/// assert!(valid_service_id("beamline-i22_1"));
/// assert!(!valid_service_id("a.b") && !valid_service_id("") && !valid_service_id("a b"));
/// ```
pub fn valid_service_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A task record shared through a [`Bucket`] (see the module documentation).
pub struct SharedRecord {
    bucket: Arc<dyn Bucket>,
    service: String,
    /// When each of this service's tasks was created.
    created: Mutex<HashMap<String, String>>,
    /// Stops the heartbeat when dropped.
    stop: Option<Sender<()>>,
    /// The heartbeat's thread.
    beat: Option<std::thread::JoinHandle<()>>,
}

impl SharedRecord {
    /// Joins the record in `bucket` as service `service`; returns it and
    /// the service's own tasks it holds, oldest first, a task that was
    /// running ended (and recorded) as lost.
    pub fn open(bucket: Arc<dyn Bucket>, service: &str) -> Result<OpenedShared, RecordError> {
        if !valid_service_id(service) {
            return Err(RecordError::Shared(format!(
                "invalid service id '{service}': letters, digits, '-' and '_' (at most 128)"
            )));
        }
        refuse_if_in_use(&*bucket, service)?;
        let started = now();
        let mut own: Vec<Stored> = stored(&*bucket, "task.")
            .into_iter()
            .filter(|s| s.service == service)
            .collect();
        own.sort_by(|a, b| a.created.cmp(&b.created));
        let (stop, stopped) = bounded::<()>(0);
        let mut record = SharedRecord {
            bucket: bucket.clone(),
            service: service.to_owned(),
            created: Mutex::new(
                own.iter()
                    .map(|s| (s.task.task_id.clone(), s.created.clone()))
                    .collect(),
            ),
            stop: Some(stop),
            beat: None,
        };
        let mut tasks = Vec::with_capacity(own.len());
        for s in own {
            let mut task = s.task;
            if !task.is_pending && !task.is_complete {
                mark_lost(
                    &mut task,
                    format!(
                        "the service stopped while the task was running (last recorded at {}); \
                         found lost at the restart at {started}",
                        s.at
                    ),
                );
                record.save(&task);
            }
            tasks.push(task);
        }
        let key = format!("service.{service}");
        let beat = move || {
            let at = now();
            let beat = Beat {
                started: started.clone(),
                at,
            };
            bucket.put(&key, serde_json::to_vec(&beat).unwrap_or_default());
        };
        beat();
        let thread = std::thread::Builder::new()
            .name("skyrun-heartbeat".into())
            .spawn(move || {
                while let Err(crossbeam::channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(HEARTBEAT)
                {
                    beat();
                }
            })
            .map_err(|e| RecordError::Shared(format!("cannot start the heartbeat: {e}")))?;
        record.beat = Some(thread);
        Ok((record, tasks))
    }

    /// This service's id.
    pub fn service(&self) -> &str {
        &self.service
    }
}

impl Drop for SharedRecord {
    /// Stops the heartbeat and deletes it: the peers know at once that the
    /// service is gone.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.beat.take() {
            let _ = t.join();
        }
        self.bucket.delete(&format!("service.{}", self.service));
    }
}

/// The value under exactly `key`.
fn value(bucket: &dyn Bucket, key: &str) -> Option<Vec<u8>> {
    let entries = bucket.entries(key);
    entries.into_iter().find(|e| e.key == key).map(|e| e.value)
}

/// Fails if a service with id `service` is running on `bucket`: its
/// heartbeat is recent (by its clock), and a new one comes within two
/// periods (a service killed a moment ago puts none: it is waited for, at
/// most that long, then taken over).
fn refuse_if_in_use(bucket: &dyn Bucket, service: &str) -> Result<(), RecordError> {
    let key = format!("service.{service}");
    let Some(first) = value(bucket, &key) else {
        return Ok(());
    };
    let Some(at) = serde_json::from_slice::<Beat>(&first).ok().map(|b| b.at) else {
        return Ok(());
    };
    let recent = chrono::DateTime::parse_from_rfc3339(&at)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok())
        .is_none_or(|age| age < PRESUMED_GONE);
    if !recent {
        return Ok(());
    }
    let end = std::time::Instant::now() + HEARTBEAT * 2 + Duration::from_millis(500);
    while std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        match value(bucket, &key) {
            None => return Ok(()),
            Some(v) if v != first => {
                return Err(RecordError::Shared(format!(
                    "service id '{service}' is in use: a service with that id is running on \
                     {} (heartbeat seen); give this one another id",
                    bucket.describe()
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Now, to order tasks by creation (RFC 3339, microseconds, UTC: the
/// strings sort as the times).
fn created_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A [`SharedRecord`], opened, and the service's own tasks.
pub type OpenedShared = (SharedRecord, Vec<TrackableTask>);

/// The tasks in `bucket` under key `prefix`.
fn stored(bucket: &dyn Bucket, prefix: &str) -> Vec<Stored> {
    bucket
        .entries(prefix)
        .into_iter()
        .filter_map(|e| serde_json::from_slice(&e.value).ok())
        .collect()
}

impl SharedRecord {
    /// The peers' tasks under key `prefix`, oldest first, a running one
    /// ended as lost when its owner is presumed gone.
    fn peers_under(&self, prefix: &str) -> Vec<PeerTask> {
        let live = self.bucket.live();
        let beats: HashMap<String, Duration> = self
            .bucket
            .entries("service.")
            .into_iter()
            .map(|e| (e.key["service.".len()..].to_owned(), e.age))
            .collect();
        let mut peers: Vec<(String, PeerTask)> = stored(&*self.bucket, prefix)
            .into_iter()
            .filter(|s| s.service != self.service)
            .map(|s| {
                let mut task = s.task;
                let running = !task.is_pending && !task.is_complete;
                let heard = beats.get(&s.service).filter(|age| **age < PRESUMED_GONE);
                if running && live && heard.is_none() {
                    let since = beats
                        .get(&s.service)
                        .map(|age| format!("for {} s", age.as_secs()))
                        .unwrap_or_else(|| "since it stopped".into());
                    mark_lost(
                        &mut task,
                        format!(
                            "service '{}' that ran the task has not been heard from {since} \
                             (task last recorded at {}; presumed lost at {})",
                            s.service,
                            s.at,
                            now()
                        ),
                    );
                }
                let peer = PeerTask {
                    service: s.service,
                    task,
                };
                (s.created, peer)
            })
            .collect();
        peers.sort_by(|a, b| a.0.cmp(&b.0));
        peers.into_iter().map(|(_, p)| p).collect()
    }
}

impl TaskRecord for SharedRecord {
    fn save(&self, task: &TrackableTask) {
        let created = self
            .created
            .lock()
            .entry(task.task_id.clone())
            .or_insert_with(created_now)
            .clone();
        let stored = Stored {
            service: self.service.clone(),
            created,
            at: now(),
            task: task.clone(),
        };
        match serde_json::to_vec(&stored) {
            Ok(v) => self.bucket.put(&format!("task.{}", task.task_id), v),
            Err(e) => eprintln!("skyrun service: task {} not recorded: {e}", task.task_id),
        }
    }

    fn delete(&self, id: &str) {
        self.created.lock().remove(id);
        self.bucket.delete(&format!("task.{id}"));
    }

    fn peers(&self) -> Vec<PeerTask> {
        self.peers_under("task.")
    }

    fn peer(&self, id: &str) -> Option<PeerTask> {
        self.peers_under(&format!("task.{id}"))
            .into_iter()
            .find(|p| p.task.task_id == id)
    }

    fn describe(&self) -> String {
        format!(
            "tasks shared in {} as service '{}'",
            self.bucket.describe(),
            self.service
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_id_in_use_is_refused_and_one_stopped_is_taken_over() {
        let bucket = Arc::new(MemoryBucket::default());
        let (first, _) = SharedRecord::open(bucket.clone(), "svc").unwrap();
        let Err(e) = SharedRecord::open(bucket.clone(), "svc") else {
            panic!("a second service with the id of a running one was let in");
        };
        assert!(
            e.to_string().starts_with(
                "shared task record: service id 'svc' is in use: a service with that id is running on an in-memory bucket"
            ),
            "{e}"
        );
        drop(first);
        assert!(SharedRecord::open(bucket, "svc").is_ok());
    }

    /// A [`MemoryBucket`] whose mirror is said not to follow the bucket.
    struct Cut(MemoryBucket);

    impl Bucket for Cut {
        fn put(&self, key: &str, value: Vec<u8>) {
            self.0.put(key, value)
        }
        fn delete(&self, key: &str) {
            self.0.delete(key)
        }
        fn entries(&self, prefix: &str) -> Vec<BucketEntry> {
            self.0.entries(prefix)
        }
        fn live(&self) -> bool {
            false
        }
        fn describe(&self) -> String {
            "a bucket cut off".into()
        }
    }

    #[test]
    fn a_peer_cut_off_from_the_bucket_presumes_nothing_lost() {
        let bucket = Arc::new(Cut(MemoryBucket::default()));
        let (owner, _) = SharedRecord::open(bucket.clone(), "owner").unwrap();
        let (peer, _) = SharedRecord::open(bucket, "peer").unwrap();
        let task: TrackableTask = serde_json::from_value(serde_json::json!({
            "task_id": "t1", "task": {"name": "count", "params": {}, "metadata": {}},
            "request_id": null, "is_complete": false, "is_pending": false,
            "errors": [], "outcome": null,
        }))
        .unwrap();
        owner.save(&task);
        drop(owner); // its heartbeat deleted: gone, were the view live
        let seen = peer.peer("t1").expect("the owner's task");
        assert!(
            !seen.task.is_complete && seen.task.errors.is_empty(),
            "{:?}",
            seen.task
        );
    }
}
