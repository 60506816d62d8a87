//! Device subscriptions: a readable device that can be subscribed to
//! delivers each new reading (values with their timestamps) to every
//! subscriber, as ophyd's `subscribe` / ophyd-async's `subscribe_reading`.
//!
//! The device side holds a [`Subscribers`] and publishes to it whenever its
//! value changes; a subscriber holds a [`Subscription`] (from
//! [`DeviceHandle::subscribe`](crate::DeviceHandle::subscribe)) and awaits
//! [`Subscription::next`]. Publishing never blocks the device and never
//! waits for a subscriber: each subscription buffers the last
//! [`SUBSCRIPTION_BUFFER`] readings, and a subscriber that falls further
//! behind skips the oldest (it always gets the latest). Dropping the
//! subscription unsubscribes; a subscription ends (`next` gives `None`)
//! when the device goes away. The first reading a subscription delivers is
//! the device's current one, as ophyd's `subscribe(run=True)` calls back at
//! once.
//!
//! ```
//! use skyrun_actors::{sim::SynSignal, DeviceHandle, DeviceOp};
//! use opentelemetry::Context;
//! # actix_rt::System::new().block_on(async {
//! let sig = DeviceHandle::spawn(SynSignal::new("current", 400.0));
//! let mut sub = sig.subscribe().await.unwrap();
//! assert_eq!(sub.next().await.unwrap()["current"].value, serde_json::json!(400.0));
//! sig.request(DeviceOp::Set(12.0.into()), &Context::new()).await.unwrap();
//! assert_eq!(sub.next().await.unwrap()["current"].value, serde_json::json!(12.0));
//! # });
//! ```

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::error::DeviceError;
use crate::reading::Readings;

/// How many readings a subscription holds for a subscriber that has not
/// taken them yet; beyond, the oldest are skipped.
pub const SUBSCRIPTION_BUFFER: usize = 16;

/// The device side of subscriptions: where a device publishes its new readings.
///
/// ```
/// use skyrun_actors::{Reading, Readings, Subscribers};
/// let subs = Subscribers::new();
/// assert!(subs.is_empty());
/// let mut sub = subs.subscribe(Readings::from([("x".to_owned(), Reading::new(1.0))]));
/// subs.publish_with(|| Readings::from([("x".to_owned(), Reading::new(2.0))]));
/// assert_eq!(sub.try_next().unwrap()["x"].value, serde_json::json!(1.0));
/// assert_eq!(sub.try_next().unwrap()["x"].value, serde_json::json!(2.0));
/// assert!(sub.try_next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Subscribers {
    tx: broadcast::Sender<Readings>,
}

impl Default for Subscribers {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscribers {
    /// Nobody subscribed yet.
    pub fn new() -> Self {
        Subscribers {
            tx: broadcast::channel(SUBSCRIPTION_BUFFER).0,
        }
    }

    /// Whether no subscription is open (publishing then does nothing).
    pub fn is_empty(&self) -> bool {
        self.tx.receiver_count() == 0
    }

    /// Delivers `readings` to every open subscription, without waiting.
    pub fn publish(&self, readings: Readings) {
        // An error only says that nobody listens.
        let _ = self.tx.send(readings);
    }

    /// Delivers the readings `make` builds, built only when someone listens.
    pub fn publish_with(&self, make: impl FnOnce() -> Readings) {
        if !self.is_empty() {
            self.publish(make());
        }
    }

    /// A new subscription, whose first reading is `current`.
    pub fn subscribe(&self, current: Readings) -> Subscription {
        Subscription {
            first: Some(current),
            rx: self.tx.subscribe(),
            skipped: 0,
        }
    }

    /// A new subscription with no first reading of its own: for a device
    /// that delivers the current reading itself, if it has one (ophyd's
    /// `subscribe` calls back at once only when its signal has a value).
    ///
    /// ```
    /// use skyrun_actors::Subscribers;
    /// let subs = Subscribers::new();
    /// let mut sub = subs.subscribe_pending();
    /// assert!(sub.try_next().is_none());
    /// ```
    pub fn subscribe_pending(&self) -> Subscription {
        Subscription {
            first: None,
            rx: self.tx.subscribe(),
            skipped: 0,
        }
    }

    /// A new subscription whose first reading `current` reads *after* the
    /// subscription listens: for a device whose readings are published
    /// from another thread (a control-system monitor), so no reading
    /// published meanwhile is lost (one may then arrive twice).
    ///
    /// ```
    /// use skyrun_actors::{Reading, Readings, Subscribers};
    /// let subs = Subscribers::new();
    /// let mut sub = subs
    ///     .subscribe_then(|| Ok::<_, ()>(Readings::from([("x".to_owned(), Reading::new(1.0))])))
    ///     .unwrap();
    /// assert_eq!(sub.try_next().unwrap()["x"].value, serde_json::json!(1.0));
    /// ```
    pub fn subscribe_then<E>(
        &self,
        current: impl FnOnce() -> Result<Readings, E>,
    ) -> Result<Subscription, E> {
        let rx = self.tx.subscribe();
        Ok(Subscription {
            first: Some(current()?),
            rx,
            skipped: 0,
        })
    }
}

/// The subscriber's side: the device's readings, one at a time, until dropped.
#[derive(Debug)]
pub struct Subscription {
    first: Option<Readings>,
    rx: broadcast::Receiver<Readings>,
    skipped: u64,
}

impl Subscription {
    /// The next reading; `None` once the device has gone away. A subscriber
    /// that fell behind skips the oldest readings (counted by
    /// [`skipped`](Self::skipped)).
    pub async fn next(&mut self) -> Option<Readings> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            match self.rx.recv().await {
                Ok(r) => return Some(r),
                Err(RecvError::Lagged(n)) => self.skipped += n,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The next reading if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Readings> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            match self.rx.try_recv() {
                Ok(r) => return Some(r),
                Err(TryRecvError::Lagged(n)) => self.skipped += n,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return None,
            }
        }
    }

    /// How many readings were skipped because this subscriber fell behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// A readable device that delivers its new readings to subscribers.
pub trait Subscribable {
    /// A subscription to the device's readings (the current one first).
    fn subscribe(&mut self) -> Result<Subscription, DeviceError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Reading;

    fn reading(x: f64) -> Readings {
        Readings::from([("x".to_owned(), Reading::new(x))])
    }

    #[test]
    fn a_slow_subscriber_skips_the_oldest_and_gets_the_latest_without_blocking_the_device() {
        let subs = Subscribers::new();
        let mut sub = subs.subscribe(reading(-1.0));
        // The device publishes far more than the buffer holds; nothing waits.
        for i in 0..100 {
            subs.publish(reading(f64::from(i)));
        }
        let mut got = Vec::new();
        while let Some(r) = sub.try_next() {
            got.push(r["x"].value.as_f64().unwrap());
        }
        assert_eq!(got[0], -1.0, "the current reading comes first");
        assert_eq!(got.last(), Some(&99.0), "the latest is never lost");
        assert_eq!(got.len(), 1 + SUBSCRIPTION_BUFFER);
        assert_eq!(sub.skipped(), 100 - SUBSCRIPTION_BUFFER as u64);
    }

    #[test]
    fn dropping_the_subscription_unsubscribes_and_a_gone_device_ends_it() {
        let subs = Subscribers::new();
        let sub = subs.subscribe(reading(0.0));
        assert!(!subs.is_empty());
        drop(sub);
        assert!(subs.is_empty());
        let mut sub = subs.subscribe(reading(0.0));
        drop(subs);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(sub.next().await.is_some());
            assert!(sub.next().await.is_none(), "the device went away");
        });
    }
}
