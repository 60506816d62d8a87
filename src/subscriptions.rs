//! Document subscriptions: callbacks that receive `(name, document)` in order,
//! on a dispatcher thread of their own, so a slow subscriber never blocks the
//! engine beyond a bounded buffer, and a panicking one is reported and removed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam::channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::documents::Document;

/// Documents queued for subscribers before the engine waits for them to catch up.
pub const DEFAULT_DOCUMENT_BUFFER: usize = 10_000;

/// Identifies a subscription, to remove it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

type Callback = Box<dyn FnMut(&str, &Document) + Send>;

enum Item {
    Doc(Arc<Document>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Default)]
struct Registry {
    subs: Mutex<Vec<(u64, Callback)>>,
    count: AtomicUsize,
    next: AtomicU64,
    removed: Mutex<Vec<String>>,
}

/// Delivers documents to subscribers on its own thread.
pub(crate) struct Dispatcher {
    tx: Sender<Item>,
    registry: Arc<Registry>,
}

impl Dispatcher {
    pub fn new(buffer: usize) -> Self {
        let (tx, rx) = bounded(buffer.max(1));
        let registry = Arc::new(Registry::default());
        let reg = registry.clone();
        std::thread::Builder::new()
            .name("skyrun-documents".into())
            .spawn(move || run(rx, reg))
            .expect("spawn the document dispatcher thread");
        Dispatcher { tx, registry }
    }

    pub fn subscribe(&self, cb: impl FnMut(&str, &Document) + Send + 'static) -> SubscriptionId {
        let id = self.registry.next.fetch_add(1, Ordering::Relaxed);
        self.registry.subs.lock().push((id, Box::new(cb)));
        self.registry.count.fetch_add(1, Ordering::Release);
        SubscriptionId(id)
    }

    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut subs = self.registry.subs.lock();
        let before = subs.len();
        subs.retain(|(i, _)| *i != id.0);
        let removed = before != subs.len();
        if removed {
            self.registry.count.fetch_sub(1, Ordering::Release);
        }
        removed
    }

    /// Whether anyone listens.
    pub fn has_subscribers(&self) -> bool {
        self.registry.count.load(Ordering::Acquire) > 0
    }

    /// Queues `doc` (waits if the buffer is full).
    pub fn emit(&self, doc: Document) {
        if self.has_subscribers() {
            let _ = self.tx.send(Item::Doc(Arc::new(doc)));
        }
    }

    /// Resolves once every document queued so far has been delivered.
    pub fn flush(&self) -> impl std::future::Future<Output = ()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Item::Flush(tx));
        async move {
            let _ = rx.await;
        }
    }

    /// Reports of subscribers removed because they panicked.
    pub fn removed_subscribers(&self) -> Vec<String> {
        self.registry.removed.lock().clone()
    }
}

fn run(rx: Receiver<Item>, reg: Arc<Registry>) {
    for item in rx {
        match item {
            Item::Flush(done) => {
                let _ = done.send(());
            }
            Item::Doc(doc) => {
                let name = doc.name();
                let mut subs = reg.subs.lock();
                let mut panicked = Vec::new();
                for (id, cb) in subs.iter_mut() {
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| cb(name, &doc))) {
                        let msg = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        let report = format!(
                            "document subscriber {id} panicked on a '{name}' document and was removed: {msg}"
                        );
                        eprintln!("skyrun: {report}");
                        reg.removed.lock().push(report);
                        panicked.push(*id);
                    }
                }
                if !panicked.is_empty() {
                    subs.retain(|(id, _)| !panicked.contains(id));
                    reg.count.fetch_sub(panicked.len(), Ordering::Release);
                }
            }
        }
    }
}
