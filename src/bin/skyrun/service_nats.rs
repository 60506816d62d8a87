//! `skyrun service --nats`: the task record in a JetStream key-value bucket
//! shared by the services on that NATS (`--tasks-bucket`, `skyrun_tasks` by
//! default), each service known by its id (`--service-id`; by default one
//! made at the first start and kept in the state folder, so a restart is
//! the same service and marks its own running task lost). See
//! `skyrun::service::SharedRecord` for who decides that a task is lost.
//!
//! If the bucket cannot be opened at start (no NATS, no JetStream), the
//! service says so and keeps its tasks in the state folder's file instead.
//! Once open, NATS going away stalls nothing: writes wait in memory (the
//! latest value of each task) and reach the bucket when NATS is back; the
//! list answers from this service's own tasks and the peers' as last seen.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skyrun::service::{Bucket, BucketEntry, OpenedRecord, SharedRecord, TaskRecord};
use skyrun_remote::bucket::{BucketOptions, SharedBucket};

/// The bucket, as the library's [`Bucket`].
struct NatsBucket(Arc<SharedBucket>);

impl Bucket for NatsBucket {
    fn put(&self, key: &str, value: Vec<u8>) {
        self.0.put(key, value);
    }
    fn delete(&self, key: &str) {
        self.0.delete(key);
    }
    fn entries(&self, prefix: &str) -> Vec<BucketEntry> {
        self.0
            .entries(prefix)
            .into_iter()
            .map(|(key, value, age)| BucketEntry {
                key,
                value: value.to_vec(),
                age,
            })
            .collect()
    }
    fn live(&self) -> bool {
        self.0.live()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// The shared record and the bucket under it (flushed at the end).
pub struct SharedTasks {
    pub record: OpenedRecord,
    pub bucket: Arc<SharedBucket>,
}

/// Why the shared record is not used.
pub enum OpenError {
    /// The bucket cannot be reached or made (the service goes on without it).
    Bucket(String),
    /// The record refuses this service (its id is in use): the service must not start.
    Record(skyrun::service::RecordError),
}

/// Opens the task record in bucket `bucket` on NATS at `url` as service
/// `service`.
pub fn open(url: &str, bucket: &str, service: &str) -> Result<SharedTasks, OpenError> {
    let opts = BucketOptions {
        bucket: bucket.to_owned(),
        ..Default::default()
    };
    let shared = SharedBucket::open(url, opts).map_err(|e| OpenError::Bucket(e.to_string()))?;
    let shared = Arc::new(shared);
    let (record, kept) = SharedRecord::open(Arc::new(NatsBucket(shared.clone())), service)
        .map_err(OpenError::Record)?;
    Ok(SharedTasks {
        record: (Box::new(record) as Box<dyn TaskRecord>, kept),
        bucket: shared,
    })
}

/// Waits (at most 5 s) for the bucket to take the last writes (the
/// heartbeat's deletion among them), saying when it does not.
pub fn finish(bucket: &SharedBucket) {
    if !bucket.flush(Duration::from_secs(5)) {
        eprintln!(
            "skyrun service: the last task changes did not reach the {} within 5 s",
            bucket.describe()
        );
    }
}

/// The service's id: `given`, else the one kept in `state_dir/service-id`
/// (made there at the first start), else a new one (said: a restart will
/// not know its tasks).
pub fn service_id(given: Option<&str>, state_dir: Option<&Path>) -> Result<String, String> {
    if let Some(id) = given {
        return if skyrun::service::valid_service_id(id) {
            Ok(id.to_owned())
        } else {
            Err(format!(
                "--service-id '{id}': letters, digits, '-' and '_' (at most 128)"
            ))
        };
    }
    let fresh = || {
        format!(
            "skyrun-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
    };
    let Some(dir) = state_dir else {
        let id = fresh();
        eprintln!(
            "skyrun service: WARNING: no state folder and no --service-id: this service is \
             '{id}' until it stops; after a restart it will not know its own tasks"
        );
        return Ok(id);
    };
    let path = dir.join("service-id");
    match std::fs::read_to_string(&path) {
        Ok(text) if skyrun::service::valid_service_id(text.trim()) => Ok(text.trim().to_owned()),
        Ok(_) => Err(format!(
            "{}: not a service id (letters, digits, '-' and '_'); delete it or give --service-id",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = fresh();
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, format!("{id}\n")))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
