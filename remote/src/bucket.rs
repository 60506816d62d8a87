//! A JetStream key-value bucket several processes share, mirrored in this
//! one ([`SharedBucket`]; `skyrun service --nats` keeps its task record in
//! one).
//!
//! Nothing here waits on NATS in the caller's thread once the bucket is
//! open: [`put`](SharedBucket::put) and [`delete`](SharedBucket::delete)
//! record the change in a table of pending writes (one per key, the latest
//! wins, so it is bounded by the number of keys) and return; an I/O thread
//! writes them, each bounded by [`BucketOptions::timeout`], and keeps what
//! failed for the next try, so a NATS server that goes away and comes back
//! gets every key's latest value. [`entries`](SharedBucket::entries) reads
//! the local mirror, which a watcher keeps up to date (and resumes from the
//! last revision seen after a failure); [`live`](SharedBucket::live) says
//! whether it follows the bucket now.
//!
//! The bucket is created when missing with a bounded history
//! ([`BucketOptions::history`] values a key) and size
//! ([`BucketOptions::max_bytes`], [`BucketOptions::max_value_size`]), file
//! storage.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
use indexmap::IndexMap;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::client::{connect_nats, io_runtime, run_on};
use crate::error::RemoteError;

/// Options of a [`SharedBucket`].
#[derive(Debug, Clone)]
pub struct BucketOptions {
    /// The bucket's name (letters, digits, `-`, `_`; default `skyrun_tasks`).
    pub bucket: String,
    /// Values kept per key, when the bucket is created (default 1).
    pub history: i64,
    /// The bucket's largest size in bytes, when it is created (default 64 MiB).
    pub max_bytes: i64,
    /// The largest value in bytes, when the bucket is created (default 1 MiB).
    pub max_value_size: i32,
    /// How long connecting, reading the bucket at start, and each write may take (default 5 s).
    pub timeout: Duration,
}

impl Default for BucketOptions {
    fn default() -> Self {
        BucketOptions {
            bucket: "skyrun_tasks".into(),
            history: 1,
            max_bytes: 64 << 20,
            max_value_size: 1 << 20,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Whether `name` can be a bucket's name.
///
/// ```
/// use skyrun_remote::bucket::valid_bucket;
/// assert!(valid_bucket("skyrun_tasks") && !valid_bucket("a.b") && !valid_bucket(""));
/// ```
pub fn valid_bucket(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Default)]
struct State {
    /// Each key's value and when this process saw it put.
    mirror: Mutex<IndexMap<String, (Bytes, Instant)>>,
    /// Writes not yet done: a value, or `None` to delete.
    dirty: Mutex<IndexMap<String, Option<Bytes>>>,
    /// Writes taken from `dirty` and not yet done.
    writing: AtomicUsize,
    wake: Notify,
    /// The watcher follows the bucket.
    watching: AtomicBool,
    /// The last write failed (said once).
    failing: AtomicBool,
}

impl State {
    fn apply(&self, entry: &kv::Entry) {
        let mut mirror = self.mirror.lock();
        match entry.operation {
            kv::Operation::Put => {
                mirror.insert(entry.key.clone(), (entry.value.clone(), Instant::now()));
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                mirror.shift_remove(&entry.key);
            }
        }
    }
}

/// A shared key-value bucket (see the module documentation).
pub struct SharedBucket {
    state: Arc<State>,
    client: async_nats::Client,
    what: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SharedBucket {
    /// Connects to NATS at `url`, opens (or creates) the bucket and reads
    /// it; fails, saying why, within about three times `opts.timeout`.
    pub fn open(url: &str, opts: BucketOptions) -> Result<SharedBucket, RemoteError> {
        if !valid_bucket(&opts.bucket) {
            return Err(RemoteError::JetStream(format!(
                "invalid bucket name '{}': letters, digits, '-' and '_'",
                opts.bucket
            )));
        }
        let (handle, stop) = io_runtime("skyrun-kv")?;
        let state = Arc::new(State::default());
        let (url_s, o, st) = (url.to_owned(), opts.clone(), state.clone());
        let (client, store, watch, last) = run_on(&handle, opts.timeout * 3, async move {
            setup(&url_s, &o, &st).await
        })
        .unwrap_or_else(|| {
            Err(RemoteError::JetStream(format!(
                "opening the key-value bucket timed out after {} s",
                (opts.timeout * 3).as_secs_f64()
            )))
        })?;
        state.watching.store(true, Ordering::Relaxed);
        handle.spawn(follow(store.clone(), watch, last, state.clone()));
        handle.spawn(write(
            store,
            state.clone(),
            opts.timeout,
            opts.bucket.clone(),
        ));
        Ok(SharedBucket {
            state,
            client,
            what: format!("JetStream bucket {} at {url}", opts.bucket),
            _stop: stop,
        })
    }

    /// Puts `value` under `key` (returns at once).
    pub fn put(&self, key: &str, value: Vec<u8>) {
        let value = Bytes::from(value);
        self.state
            .mirror
            .lock()
            .insert(key.to_owned(), (value.clone(), Instant::now()));
        self.state.dirty.lock().insert(key.to_owned(), Some(value));
        self.state.wake.notify_one();
    }

    /// Deletes `key` (returns at once).
    pub fn delete(&self, key: &str) {
        self.state.mirror.lock().shift_remove(key);
        self.state.dirty.lock().insert(key.to_owned(), None);
        self.state.wake.notify_one();
    }

    /// The keys starting with `prefix`, each with its value and how long
    /// ago this process saw it put, in the order first seen.
    pub fn entries(&self, prefix: &str) -> Vec<(String, Bytes, Duration)> {
        let mirror = self.state.mirror.lock();
        mirror
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (v, at))| (k.clone(), v.clone(), at.elapsed()))
            .collect()
    }

    /// Whether the mirror follows the bucket now (connected and watching).
    pub fn live(&self) -> bool {
        self.state.watching.load(Ordering::Relaxed)
            && self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// `JetStream bucket NAME at URL`.
    pub fn describe(&self) -> String {
        self.what.clone()
    }

    /// Waits (at most `limit`) until every write is done; whether they are.
    pub fn flush(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            let idle = self.state.dirty.lock().is_empty()
                && self.state.writing.load(Ordering::Acquire) == 0;
            if idle {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Connects, opens or creates the bucket, and reads it into the mirror:
/// the client, the bucket, its watcher and the last revision read.
async fn setup(
    url: &str,
    opts: &BucketOptions,
    state: &State,
) -> Result<(async_nats::Client, kv::Store, kv::Watch, u64), RemoteError> {
    let js_err = |what: &str, e: &dyn std::fmt::Display| {
        RemoteError::JetStream(format!("{what} '{}': {e}", opts.bucket))
    };
    let client = connect_nats(url, "skyrun tasks", opts.timeout).await?;
    let js = jetstream::new(client.clone());
    // The stream is made here, as `create_key_value` makes it, rather than
    // by `create_key_value`, which asks for account information that
    // nats-server 2.9 answers in a form async-nats 0.51 cannot read.
    let stream = jetstream::stream::Config {
        name: format!("KV_{}", opts.bucket),
        description: Some("skyrun service tasks".into()),
        subjects: vec![format!("$KV.{}.>", opts.bucket)],
        max_messages_per_subject: opts.history.max(1),
        max_bytes: opts.max_bytes,
        max_message_size: opts.max_value_size,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(stream)
        .await
        .map_err(|e| js_err("cannot create or find the key-value bucket", &e))?;
    let store = js
        .get_key_value(&opts.bucket)
        .await
        .map_err(|e| js_err("cannot open the key-value bucket", &e))?;
    let values = store
        .status()
        .await
        .map_err(|e| js_err("cannot read the key-value bucket", &e))?
        .values();
    let mut watch = store
        .watch_with_history(">")
        .await
        .map_err(|e| js_err("cannot watch the key-value bucket", &e))?;
    let mut last = 0;
    if values > 0 {
        while let Some(entry) = watch.next().await {
            let entry = entry.map_err(|e| js_err("cannot read the key-value bucket", &e))?;
            state.apply(&entry);
            last = entry.revision;
            if entry.delta == 0 {
                break;
            }
        }
    }
    Ok((client, store, watch, last))
}

/// Keeps the mirror up to date; after a failure, watches again from the
/// revision after the last one seen.
async fn follow(store: kv::Store, mut watch: kv::Watch, mut last: u64, state: Arc<State>) {
    loop {
        while let Some(Ok(entry)) = watch.next().await {
            state.watching.store(true, Ordering::Relaxed);
            state.apply(&entry);
            last = entry.revision;
        }
        state.watching.store(false, Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Ok(w) = store.watch_all_from_revision(last + 1).await {
                watch = w;
                state.watching.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
}

/// Writes the pending changes, each bounded by `timeout`; what fails is
/// kept (unless changed meanwhile) and tried again half a second later.
async fn write(store: kv::Store, state: Arc<State>, timeout: Duration, bucket: String) {
    loop {
        tokio::select! {
            () = state.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let batch = {
            let mut dirty = state.dirty.lock();
            state.writing.store(dirty.len(), Ordering::Release);
            std::mem::take(&mut *dirty)
        };
        let mut failed: Option<String> = None;
        let mut rest = batch.into_iter();
        for (key, value) in rest.by_ref() {
            let r = match &value {
                Some(v) => tokio::time::timeout(timeout, store.put(&key, v.clone()))
                    .await
                    .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
                None => tokio::time::timeout(timeout, store.purge(&key))
                    .await
                    .map(|r| r.map_err(|e| e.to_string())),
            };
            let r =
                r.unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs_f64())));
            match r {
                Ok(()) => {
                    state.writing.fetch_sub(1, Ordering::AcqRel);
                }
                Err(e) => {
                    let mut dirty = state.dirty.lock();
                    dirty.entry(key.clone()).or_insert(value);
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            {
                let mut dirty = state.dirty.lock();
                for (k, v) in rest {
                    dirty.entry(k).or_insert(v);
                }
            }
            state.writing.store(0, Ordering::Release);
            if !state.failing.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "skyrun: writes to the key-value bucket {bucket} fail ({e}); kept and retried"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            state.wake.notify_one();
        } else if state.failing.swap(false, Ordering::Relaxed) {
            eprintln!("skyrun: writes to the key-value bucket {bucket} work again");
        }
    }
}
