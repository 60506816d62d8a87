//! Status groups: `set`/`trigger`/`kickoff`/`complete` add their Status to a
//! group (or to the ungrouped set), and `wait(group)` waits for all of them,
//! failing as soon as one fails, as Bluesky's RunEngine does; a wait can
//! also watch other groups (failing when one of theirs fails) and, on a
//! timeout it does not fail on, put its group back for the next wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hashbrown::HashMap;
use parking_lot::Mutex;
use skyrun_actors::{DeviceHandle, Status, StatusError};

use crate::error::PlanError;

/// Which command on which device created a status, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub command: &'static str,
    /// The device (a handle: its name is copied only if the status fails).
    pub device: DeviceHandle,
}

impl Origin {
    /// The plan's error for a status of this origin that failed with `source`.
    fn error(&self, source: StatusError) -> PlanError {
        PlanError::Status {
            command: self.command.into(),
            device: self.device.name().to_owned(),
            source,
        }
    }
}

#[derive(Default)]
struct Inner {
    pending: AtomicUsize,
    shared: Mutex<Shared>,
    /// The engine's record of failed statuses, waited on or not.
    failures: Arc<Failures>,
}

/// The first status that failed since the plan was last told of one, as
/// Bluesky's `_status_object_completed` records it: the engine throws it into
/// the plan at its next message, so a failed status that is never waited on
/// still fails the run.
#[derive(Default)]
pub(crate) struct Failures {
    any: AtomicBool,
    first: Mutex<Option<(Origin, StatusError)>>,
}

impl Failures {
    fn record(&self, origin: &Origin, e: &StatusError) {
        let mut first = self.first.lock();
        if first.is_none() {
            *first = Some((origin.clone(), e.clone()));
        }
        self.any.store(true, Ordering::Release);
    }

    /// The failure to report, if any (cheap when there is none).
    pub fn take(&self) -> Option<PlanError> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        self.any.store(false, Ordering::Release);
        self.first
            .lock()
            .take()
            .map(|(origin, source)| origin.error(source))
    }

    /// Forgets what failed (the plan was told, or it rewinds).
    pub fn clear(&self) {
        self.any.store(false, Ordering::Release);
        *self.first.lock() = None;
    }
}

#[derive(Default)]
struct Shared {
    failure: Option<(Origin, StatusError)>,
    /// The wait on this group.
    waker: Option<Waker>,
    /// Waits watching this group (`wait(watch=[...])`), woken when a status fails.
    watchers: Vec<Waker>,
}

impl Inner {
    fn finished(&self, origin: &Origin, result: &Result<(), StatusError>) {
        let mut sh = self.shared.lock();
        if let Err(e) = result {
            self.failures.record(origin, e);
            if sh.failure.is_none() {
                sh.failure = Some((origin.clone(), e.clone()));
            }
        }
        let left = self.pending.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 || result.is_err() {
            if let Some(w) = sh.waker.take() {
                w.wake();
            }
        }
        if result.is_err() {
            sh.watchers.drain(..).for_each(Waker::wake);
        }
    }
}

/// The statuses of one group.
#[derive(Clone, Default)]
pub(crate) struct Group(Arc<Inner>);

impl Group {
    fn new(failures: &Arc<Failures>) -> Self {
        Group(Arc::new(Inner {
            failures: failures.clone(),
            ..Inner::default()
        }))
    }

    fn add(&self, status: &Status, origin: Origin) {
        if let Some(result) = status.result() {
            self.0.pending.fetch_add(1, Ordering::AcqRel);
            self.0.finished(&origin, &result);
            return;
        }
        self.0.pending.fetch_add(1, Ordering::AcqRel);
        let inner = self.0.clone();
        status.add_callback(move |r| inner.finished(&origin, r));
    }

    /// Resolves with the first failure of this group's statuses, without
    /// taking it (a later wait on the group reports it too): what a wait
    /// that watches the group fails with.
    pub fn failed(&self) -> impl Future<Output = PlanError> + '_ {
        std::future::poll_fn(move |cx| {
            let mut sh = self.0.shared.lock();
            if let Some((origin, e)) = &sh.failure {
                return Poll::Ready(origin.error(e.clone()));
            }
            if !sh.watchers.iter().any(|w| w.will_wake(cx.waker())) {
                sh.watchers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

impl Future for Group {
    type Output = Result<(), PlanError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut sh = self.0.shared.lock();
        if let Some((origin, e)) = sh.failure.take() {
            return Poll::Ready(Err(origin.error(e)));
        }
        if self.0.pending.load(Ordering::Acquire) == 0 {
            return Poll::Ready(Ok(()));
        }
        sh.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// All groups with statuses not yet waited on.
pub(crate) struct Groups {
    ungrouped: Group,
    named: HashMap<String, Group>,
    failures: Arc<Failures>,
}

impl Default for Groups {
    fn default() -> Self {
        let failures = Arc::new(Failures::default());
        Groups {
            ungrouped: Group::new(&failures),
            named: HashMap::new(),
            failures,
        }
    }
}

impl Groups {
    /// Adds `status` to `group` (`None`: the ungrouped statuses).
    pub fn add(&mut self, group: Option<&str>, status: &Status, origin: Origin) {
        let g = match group {
            None => &self.ungrouped,
            Some(name) => self
                .named
                .entry_ref(name)
                .or_insert_with(|| Group::new(&self.failures)),
        };
        g.add(status, origin);
    }

    /// Takes `group` out for waiting (an empty group if nothing was added).
    pub fn take(&mut self, group: Option<&str>) -> Group {
        match group {
            None => std::mem::replace(&mut self.ungrouped, Group::new(&self.failures)),
            Some(name) => self.named.remove(name).unwrap_or_default(),
        }
    }

    /// Puts `taken` back as `group` (a wait that timed out without failing:
    /// the next wait on the group waits for its statuses again).
    pub fn put_back(&mut self, group: Option<&str>, taken: Group) {
        match group {
            None => self.ungrouped = taken,
            Some(name) => {
                self.named.insert(name.to_owned(), taken);
            }
        }
    }

    /// The groups named in `names` that have statuses (a name with none is
    /// nothing to watch, as in Bluesky).
    pub fn watched<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Vec<Group> {
        names
            .into_iter()
            .filter_map(|n| self.named.get(n).cloned())
            .collect()
    }

    /// The record of failed statuses (shared with every group).
    pub fn failures(&self) -> &Arc<Failures> {
        &self.failures
    }

    /// Forgets every group, and what failed.
    pub fn clear(&mut self) {
        self.ungrouped = Group::new(&self.failures);
        self.named.clear();
        self.failures.clear();
    }
}
