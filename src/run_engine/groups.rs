//! Status groups: `set`/`trigger`/`kickoff`/`complete` add their Status to a
//! group (or to the ungrouped set), and `wait(group)` waits for all of them,
//! failing as soon as one fails, as Bluesky's RunEngine does.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use skyrun_actors::{Status, StatusError};

use crate::error::PlanError;

/// Which command on which device created a status, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub command: &'static str,
    pub device: String,
}

#[derive(Default)]
struct Inner {
    pending: AtomicUsize,
    shared: Mutex<Shared>,
}

#[derive(Default)]
struct Shared {
    failure: Option<(Origin, StatusError)>,
    waker: Option<Waker>,
}

impl Inner {
    fn finished(&self, origin: &Origin, result: &Result<(), StatusError>) {
        let mut sh = self.shared.lock();
        if let Err(e) = result {
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
    }
}

/// The statuses of one group.
#[derive(Clone, Default)]
pub(crate) struct Group(Arc<Inner>);

impl Group {
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
}

impl Future for Group {
    type Output = Result<(), PlanError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut sh = self.0.shared.lock();
        if let Some((origin, e)) = sh.failure.take() {
            return Poll::Ready(Err(PlanError::Status {
                command: origin.command.into(),
                device: origin.device,
                source: e,
            }));
        }
        if self.0.pending.load(Ordering::Acquire) == 0 {
            return Poll::Ready(Ok(()));
        }
        sh.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// All groups with statuses not yet waited on.
#[derive(Default)]
pub(crate) struct Groups {
    ungrouped: Group,
    named: HashMap<String, Group>,
}

impl Groups {
    /// Adds `status` to `group` (`None`: the ungrouped statuses).
    pub fn add(&mut self, group: Option<&str>, status: &Status, origin: Origin) {
        let g = match group {
            None => &self.ungrouped,
            Some(name) => match self.named.get(name) {
                Some(g) => g,
                None => self.named.entry(name.to_owned()).or_default(),
            },
        };
        g.add(status, origin);
    }

    /// Takes `group` out for waiting (an empty group if nothing was added).
    pub fn take(&mut self, group: Option<&str>) -> Group {
        match group {
            None => std::mem::take(&mut self.ungrouped),
            Some(name) => self.named.remove(name).unwrap_or_default(),
        }
    }

    /// Forgets every group.
    pub fn clear(&mut self) {
        self.ungrouped = Group::default();
        self.named.clear();
    }
}
