//! Documents to JetStream, in bluesky-nats's wire format: subject
//! `PREFIX.<document name>`, the document as a msgpack map, header `run_id`
//! (the start document's uid), plus the span context headers (`traceparent`)
//! of the context given. bluesky-nats's Python `NATSDispatcher` (and any
//! JetStream consumer) reads them back.
//!
//! [`DocumentPublisher::publish`] encodes on the caller's thread and queues
//! the message in a bounded buffer ([`PublisherOptions::buffer`] documents):
//! the caller waits only when the buffer is full, and at most
//! [`PublisherOptions::full_wait`]: past that (JetStream down for long) the
//! document is counted lost in the [`PublishReport`], and the plan goes on. An I/O thread publishes
//! in order and awaits each acknowledgement (many in flight), so a
//! document counts as delivered only once JetStream has stored it; the
//! stream (file storage) is created when missing, so a slow or restarted
//! consumer loses nothing. A publish that is not acknowledged is retried
//! (with a `Nats-Msg-Id` header, so JetStream drops duplicates) and, failing
//! that, counted in the [`PublishReport`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use opentelemetry::Context;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::client::{connect_nats, io_runtime, run_on};
use crate::error::RemoteError;
use crate::wire;

/// Options of a [`DocumentPublisher`].
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// The JetStream stream (created with subjects `PREFIX.>` when missing; default `bluesky`, as `NATSDispatcher`'s).
    pub stream: String,
    /// Documents queued before `publish` waits (default 10,000).
    pub buffer: usize,
    /// How long one acknowledgement may take (default 5 s).
    pub ack_timeout: Duration,
    /// Publishes retried after a failed acknowledgement (default 3).
    pub retries: usize,
    /// How long `publish` waits for room in a full buffer before the
    /// document is counted lost (default 10 s): JetStream down or too slow
    /// for that long never holds the plan longer.
    pub full_wait: Duration,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            stream: "bluesky".into(),
            buffer: 10_000,
            ack_timeout: Duration::from_secs(5),
            retries: 3,
            full_wait: Duration::from_secs(10),
        }
    }
}

/// What a publisher delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Documents acknowledged by JetStream.
    pub acked: u64,
    /// Documents given up on.
    pub failed: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl std::fmt::Display for PublishReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} documents stored in JetStream", self.acked)?;
        if self.failed > 0 {
            write!(f, ", {} lost", self.failed)?;
        }
        if let Some(e) = &self.first_error {
            write!(f, " (first error: {e})")?;
        }
        Ok(())
    }
}

struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Publishes documents to JetStream (see the module documentation).
pub struct DocumentPublisher {
    prefix: String,
    tx: Mutex<Option<mpsc::Sender<Outgoing>>>,
    run_id: Mutex<String>,
    seq: AtomicU64,
    counters: Arc<Counters>,
    /// [`PublisherOptions::full_wait`].
    full_wait: Duration,
    done: Mutex<std::sync::mpsc::Receiver<()>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Whether `prefix` is a valid subject prefix (dot-separated tokens, no wildcards).
///
/// ```
/// use skyrun_remote::documents::valid_prefix;
/// assert!(valid_prefix("events.volatile"));
/// assert!(!valid_prefix("events.>") && !valid_prefix("") && !valid_prefix("a..b"));
/// ```
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.split('.').all(wire::valid_server_name)
}

impl DocumentPublisher {
    /// Connects to NATS at `url` and makes sure the stream exists.
    pub fn connect(url: &str, prefix: &str, opts: PublisherOptions) -> Result<Self, RemoteError> {
        if !valid_prefix(prefix) {
            return Err(RemoteError::JetStream(format!(
                "invalid subject prefix '{prefix}': dot-separated tokens of letters, digits, '_' and '-'"
            )));
        }
        let (handle, stop_tx) = io_runtime("skyrun-jetstream")?;
        let (url_s, subjects, name) = (url.to_owned(), format!("{prefix}.>"), opts.stream.clone());
        let js = run_on(&handle, Duration::from_secs(15), async move {
            let nc = connect_nats(&url_s, "skyrun documents", Duration::from_secs(5)).await?;
            let js = jetstream::new(nc);
            js.get_or_create_stream(stream::Config {
                name,
                subjects: vec![subjects],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                RemoteError::JetStream(format!("cannot create or find the stream: {e}"))
            })?;
            Ok::<_, RemoteError>(js)
        })
        .unwrap_or_else(|| {
            Err(RemoteError::JetStream(
                "setting up the stream timed out".into(),
            ))
        })?;
        let full_wait = opts.full_wait;
        let (tx, mut rx) = mpsc::channel::<Outgoing>(opts.buffer.max(1));
        let counters = Arc::new(Counters::default());
        let (done_tx, done) = std::sync::mpsc::channel();
        let c = counters.clone();
        handle.spawn(async move {
            // Acks are awaited by a second task, in order, so many are in flight.
            let (atx, mut arx) =
                mpsc::channel::<(Outgoing, jetstream::context::PublishAckFuture)>(4096);
            let js2 = js.clone();
            let c2 = c.clone();
            let acker = tokio::spawn(async move {
                while let Some((msg, ack)) = arx.recv().await {
                    let mut result = ack.await.map(|_| ());
                    let mut tries = 0;
                    while result.is_err() && tries < opts.retries {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100 * tries as u64)).await;
                        result = match js2
                            .publish_with_headers(
                                msg.subject.clone(),
                                msg.headers.clone(),
                                msg.payload.clone(),
                            )
                            .await
                        {
                            Ok(f) => f.await.map(|_| ()),
                            Err(e) => Err(e),
                        };
                    }
                    match result {
                        Ok(()) => {
                            c2.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            c2.failed.fetch_add(1, Ordering::Relaxed);
                            c2.first_error.lock().get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            });
            while let Some(msg) = rx.recv().await {
                match js
                    .publish_with_headers(
                        msg.subject.clone(),
                        msg.headers.clone(),
                        msg.payload.clone(),
                    )
                    .await
                {
                    Ok(ack) => {
                        if atx.send((msg, ack)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                        c.first_error.lock().get_or_insert_with(|| e.to_string());
                    }
                }
            }
            drop(atx);
            let _ = acker.await;
            let _ = done_tx.send(());
        });
        Ok(DocumentPublisher {
            prefix: prefix.to_owned(),
            tx: Mutex::new(Some(tx)),
            run_id: Mutex::new(String::new()),
            seq: AtomicU64::new(0),
            counters,
            full_wait,
            done: Mutex::new(done),
            _stop: stop_tx,
        })
    }

    /// Queues document `doc` named `name` (`start`, `descriptor`, `event`,
    /// `stop`, ...), with the span context of `cx` in its headers. A start
    /// document's `uid` becomes the `run_id` of it and what follows. Waits
    /// only when the buffer is full.
    pub fn publish<T: Serialize>(
        &self,
        name: &str,
        doc: &T,
        cx: &Context,
    ) -> Result<(), RemoteError> {
        self.publish_tagged(name, doc, cx, &[])
    }

    /// [`publish`](Self::publish) with `tags` added to the message's headers
    /// (`skyrun service`: the document's `task_id`).
    pub fn publish_tagged<T: Serialize>(
        &self,
        name: &str,
        doc: &T,
        cx: &Context,
        tags: &[(&str, &str)],
    ) -> Result<(), RemoteError> {
        let payload = rmp_serde::to_vec_named(doc)
            .map_err(|e| RemoteError::JetStream(format!("cannot encode a {name} document: {e}")))?;
        if name == "start" {
            if let Ok(v) = serde_json::to_value(doc) {
                if let Some(uid) = v.get("uid").and_then(|u| u.as_str()) {
                    *self.run_id.lock() = uid.to_owned();
                }
            }
        }
        let (tx, mut msg) = self.message(name, wire::inject_headers(cx), tags, payload.into())?;
        // Waits for room, but not past `full_wait`: then the document is lost
        // (counted, and said in the report), never the plan held.
        let deadline = std::time::Instant::now() + self.full_wait;
        loop {
            match tx.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(RemoteError::JetStream(
                        "the publishing thread has stopped".into(),
                    ))
                }
                Err(mpsc::error::TrySendError::Full(m)) => {
                    if std::time::Instant::now() >= deadline {
                        let why = format!(
                            "a {name} document was dropped: JetStream took no document for {:?} (buffer full)",
                            self.full_wait
                        );
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        self.counters
                            .first_error
                            .lock()
                            .get_or_insert_with(|| why.clone());
                        return Err(RemoteError::JetStream(why));
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Queues `json` (an event, not a document: blueapi's `WorkerEvent`,
    /// `ProgressEvent`) on subject `PREFIX.<name>` as JSON, with `tags` in
    /// its headers, and the current `run_id`. Never waits: a full buffer
    /// drops it, counted as failed. Safe to call from async code.
    pub fn publish_json_tagged(
        &self,
        name: &str,
        json: &str,
        tags: &[(&str, &str)],
    ) -> Result<(), RemoteError> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json");
        let payload = Bytes::copy_from_slice(json.as_bytes());
        let (tx, msg) = self.message(name, headers, tags, payload)?;
        tx.try_send(msg).map_err(|e| {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            let why = format!("{name} not published: {e}");
            self.counters
                .first_error
                .lock()
                .get_or_insert_with(|| why.clone());
            RemoteError::JetStream(why)
        })
    }

    /// The message `name` with `headers`, the run's, and `tags`; the queue to put it in.
    fn message(
        &self,
        name: &str,
        mut headers: HeaderMap,
        tags: &[(&str, &str)],
        payload: Bytes,
    ) -> Result<(mpsc::Sender<Outgoing>, Outgoing), RemoteError> {
        let run_id = self.run_id.lock().clone();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        headers.insert("Nats-Msg-Id", format!("{run_id}:{seq}").as_str());
        headers.insert("run_id", run_id.as_str());
        for (k, v) in tags {
            headers.insert(*k, *v);
        }
        let msg = Outgoing {
            subject: format!("{}.{name}", self.prefix),
            headers,
            payload,
        };
        let Some(tx) = self.tx.lock().clone() else {
            return Err(RemoteError::JetStream("the publisher is finished".into()));
        };
        Ok((tx, msg))
    }

    /// Waits (at most `limit`) until every queued document is acknowledged
    /// or given up on, and reports.
    pub fn finish(&self, limit: Duration) -> PublishReport {
        drop(self.tx.lock().take());
        let timed_out = self.done.lock().recv_timeout(limit).is_err();
        let mut report = PublishReport {
            acked: self.counters.acked.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            first_error: self.counters.first_error.lock().clone(),
        };
        if timed_out {
            let queued = self.seq.load(Ordering::Relaxed);
            report.failed = queued.saturating_sub(report.acked);
            report.first_error.get_or_insert_with(|| {
                format!("not all acknowledged within {} s", limit.as_secs_f64())
            });
        }
        report
    }
}
