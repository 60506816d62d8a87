//! A PV's monitor as a device's subscriptions ([`Subscribable`]
//! (skyrun_actors::Subscribable)): what lets the engine's `monitor` (and
//! ophyd's `subscribe`) follow an [`EpicsSignal`](crate::EpicsSignal),
//! [`EpicsSignalRO`](crate::EpicsSignalRO) or an
//! [`EpicsMotor`](crate::EpicsMotor)'s readback.
//!
//! The first subscription starts a pump on the client's runtime that turns
//! each update of the PV's monitor into the device's readings (value and the
//! IOC's timestamp) and publishes them to every subscription; readings are
//! built only while someone is subscribed. A subscriber that falls behind
//! skips the oldest readings, never the latest (merged updates under load,
//! as CA itself merges them). The pump ends with the device: its
//! subscriptions then end too. A disconnect publishes nothing (the readings
//! resume with the first update after the reconnect).

use skyrun_actors::{DeviceError, Readings, Subscribers, Subscription};
use tokio::sync::oneshot;

use crate::client::{PvEvent, PvUpdate};
use crate::pv::Pv;

/// Builds a device's readings from an update of the PV it follows (`None`:
/// nothing to publish, e.g. another PV of the reading is disconnected).
pub(crate) type MakeReadings = Box<dyn Fn(&PvUpdate) -> Option<Readings> + Send + Sync>;

/// The subscriptions of one device, fed by one PV's monitor.
pub(crate) struct PvSubscribers {
    subs: Subscribers,
    /// Dropped with the device: the pump then ends (and with it, the
    /// subscriptions). `None` until the first subscription.
    pump: Option<oneshot::Sender<()>>,
}

impl PvSubscribers {
    /// Nobody subscribed yet; no pump runs.
    pub(crate) fn new() -> Self {
        PvSubscribers {
            subs: Subscribers::new(),
            pump: None,
        }
    }

    /// A subscription whose first reading is `current()`, then the readings
    /// `make` builds from each later update of `pv`.
    pub(crate) fn subscribe(
        &mut self,
        pv: &Pv,
        make: impl FnOnce() -> MakeReadings,
        current: impl FnOnce() -> Result<Readings, DeviceError>,
    ) -> Result<Subscription, DeviceError> {
        if self.pump.is_none() {
            // Listening before `current` is read: no update is lost between.
            let mut events = pv.listen();
            let (stop, mut stopped) = oneshot::channel::<()>();
            let (subs, make) = (self.subs.clone(), make());
            pv.runtime().spawn(async move {
                loop {
                    tokio::select! {
                        ev = events.recv() => match ev {
                            Some(PvEvent::Update(u)) => {
                                if !subs.is_empty() {
                                    if let Some(r) = make(&u) {
                                        subs.publish(r);
                                    }
                                }
                            }
                            Some(_) => {}
                            None => break,
                        },
                        _ = &mut stopped => break,
                    }
                }
            });
            self.pump = Some(stop);
        }
        self.subs.subscribe_then(current)
    }
}
