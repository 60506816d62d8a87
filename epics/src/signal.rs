//! `EpicsSignal` and `EpicsSignalRO`: one PV (or a readback PV and a
//! setpoint PV) as a device, after ophyd's classes of the same names.
//!
//! Readings answer from the monitor (value and the IOC's timestamp);
//! `describe` gives the dtype, shape, units, precision and control limits
//! the record reports. `set` is a put-with-completion (`put_complete`, as
//! ophyd's option) or a put followed by a wait for the readback to reach
//! the value (within a tolerance).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skyrun_actors::{
    DataKey, DataKeys, Device, DeviceContext, DeviceError, Movable, Readable, Reading, Readings,
    Status, StatusError, Subscribable, Subscription, Triggerable,
};

use crate::client::{PvClient, PvEvent};
use crate::pv::{connect_all, Pv};
use crate::subscription::PvSubscribers;
use crate::ConnectError;

/// The default connect timeout, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: f64 = 2.0;

/// How an [`EpicsSignal`]'s `set` completes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SetOptions {
    /// Put with completion (the IOC's put-callback); otherwise put and wait
    /// for the readback.
    pub put_complete: bool,
    /// How far the readback may be from the value to count as there
    /// (numbers only; default: equal).
    pub tolerance: Option<f64>,
    /// Fails a set's status after this many seconds.
    pub timeout: Option<f64>,
}

/// A readable and settable PV pair: `read_pv` read, `write_pv` (default
/// `read_pv`) written, after ophyd's `EpicsSignal(read_pv, write_pv=None)`.
///
/// Its reading is `{name: {value, timestamp}}` from the read PV's monitor.
/// `trigger()` returns a finished status, as ophyd's signals do. It is
/// [`Subscribable`]: each monitor update of the read PV is delivered to
/// subscribers (the engine's `monitor`), with the IOC's timestamp.
///
/// ```no_run
/// use skyrun_epics::{CaClient, EpicsSignal, SetOptions};
/// use skyrun_actors::DeviceHandle;
/// # actix_rt::System::new().block_on(async {
/// let ca = CaClient::start().unwrap();
/// let sig = EpicsSignal::connect(ca.as_ref(), "gain", "BL:GAIN:RBV", Some("BL:GAIN"), 2.0)
///     .await
///     .unwrap()
///     .with_set_options(SetOptions { put_complete: true, ..Default::default() });
/// let handle = DeviceHandle::spawn(sig);
/// # });
/// ```
pub struct EpicsSignal {
    name: Arc<str>,
    read: Pv,
    write: Option<Pv>,
    options: SetOptions,
    subs: PvSubscribers,
}

impl EpicsSignal {
    /// Connects `read_pv` (and `write_pv`, when it differs) within
    /// `connect_timeout` seconds.
    pub async fn connect(
        client: &dyn PvClient,
        name: &str,
        read_pv: &str,
        write_pv: Option<&str>,
        connect_timeout: f64,
    ) -> Result<Self, ConnectError> {
        let mut pvs = vec![(name.to_owned(), read_pv.to_owned())];
        if let Some(w) = write_pv.filter(|w| *w != read_pv) {
            pvs.push((name.to_owned(), w.to_owned()));
        }
        let mut got = connect_all(client, &pvs, timeout(connect_timeout)).await?;
        let write = (got.len() == 2).then(|| got.pop().expect("two PVs"));
        let read = got.pop().expect("the read PV");
        Ok(Self::from_pvs(name, read, write))
    }

    /// A signal over PVs already connected (`write`: none to write `read`).
    pub fn from_pvs(name: &str, read: Pv, write: Option<Pv>) -> Self {
        EpicsSignal {
            name: Arc::from(name),
            read,
            write,
            options: SetOptions::default(),
            subs: PvSubscribers::new(),
        }
    }

    /// Sets how `set` completes.
    pub fn with_set_options(mut self, options: SetOptions) -> Self {
        self.options = options;
        self
    }

    /// The PV read.
    pub fn read_pv(&self) -> &Pv {
        &self.read
    }

    /// The PV written.
    pub fn write_pv(&self) -> &Pv {
        self.write.as_ref().unwrap_or(&self.read)
    }
}

/// `secs` as a duration (non-finite or negative: the default).
pub(crate) fn timeout(secs: f64) -> Duration {
    if secs.is_finite() && secs > 0.0 {
        Duration::from_secs_f64(secs)
    } else {
        Duration::from_secs_f64(DEFAULT_CONNECT_TIMEOUT)
    }
}

/// The reading of `pv` under `key`, or a failure naming the PV.
pub(crate) fn reading(device: &str, pv: &Pv) -> Result<Reading, DeviceError> {
    let u = pv.get().map_err(|e| DeviceError::Failed {
        device: device.to_owned(),
        operation: "read",
        reason: e.to_string(),
    })?;
    Ok(Reading {
        value: u.value,
        timestamp: u.timestamp,
    })
}

/// The data key of `pv`, as ophyd's `EpicsSignalBase.describe` gives it.
pub(crate) fn data_key(pv: &Pv) -> DataKey {
    let m = pv.meta();
    let mut k = DataKey::for_value(format!("PV:{}", pv.name()), &Value::Null);
    k.dtype = m.dtype.to_owned();
    k.shape = m.shape.clone();
    k.units = m.units.clone();
    k.precision = m.precision;
    if let Some((lo, hi)) = m.limits {
        k = k.with_ctrl_limits(lo, hi);
    }
    k
}

fn read_only(name: &str, reason: String) -> DeviceError {
    DeviceError::InvalidArgument {
        device: name.to_owned(),
        operation: "set",
        reason,
    }
}

fn matches(readback: &Value, target: &Value, tolerance: Option<f64>) -> bool {
    match (readback.as_f64(), target.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= tolerance.unwrap_or(0.0).max(1e-12 * b.abs()),
        _ => readback == target,
    }
}

impl Device for EpicsSignal {
    fn name(&self) -> &str {
        &self.name
    }
    fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }
    fn type_name(&self) -> &'static str {
        "EpicsSignal"
    }
    fn repr(&self) -> String {
        format!(
            "EpicsSignal(read_pv='{}', name='{}', write_pv='{}')",
            self.read.name(),
            self.name,
            self.write_pv().name()
        )
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        Some(self)
    }
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        Some(self)
    }
}

impl Subscribable for EpicsSignal {
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        let name = self.name.clone();
        let make = move || -> crate::subscription::MakeReadings {
            Box::new(move |u| {
                Some(Readings::from([(
                    name.to_string(),
                    Reading {
                        value: u.value.clone(),
                        timestamp: u.timestamp,
                    },
                )]))
            })
        };
        let (name, read) = (self.name.clone(), self.read.clone());
        self.subs.subscribe(&self.read, make, || {
            Ok(Readings::from([(name.to_string(), reading(&name, &read)?)]))
        })
    }
}

impl Readable for EpicsSignal {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(Readings::from([(
            self.name.to_string(),
            reading(&self.name, &self.read)?,
        )]))
    }
    fn describe(&self) -> DataKeys {
        DataKeys::from([(self.name.to_string(), data_key(&self.read))])
    }
}

/// A finished status: what `trigger()` of an ophyd signal or motor returns.
pub(crate) fn finished(ctx: &DeviceContext) -> Result<Status, DeviceError> {
    let s = ctx.status().build();
    s.set_finished();
    Ok(s)
}

impl Triggerable for EpicsSignal {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        finished(ctx)
    }
}

impl Movable for EpicsSignal {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        let pv = self.write_pv().clone();
        if !pv.meta().writable {
            return Err(read_only(
                &self.name,
                format!("PV '{}' is read-only (IOC {})", pv.name(), pv.server()),
            ));
        }
        let status = ctx
            .status()
            .timeout(self.options.timeout)
            .attribute("pv", pv.name().to_owned())
            .build();
        let (done, name, value) = (status.clone(), self.name.clone(), value.clone());
        let (readback, options) = (self.read.clone(), self.options);
        // Listening before the put: no update of the readback is missed.
        let mut updates = (!options.put_complete).then(|| readback.listen());
        let mut write_events = pv.listen();
        pv.runtime().clone().spawn(async move {
            let fail = |reason: String| {
                done.set_exception(StatusError::Failed(format!("{name}: {reason}")));
            };
            let completion = options
                .put_complete
                .then(|| Duration::from_secs_f64(options.timeout.unwrap_or(3600.0)));
            let put = pv.put(&value, completion);
            tokio::pin!(put);
            // The put (with completion: its callback), unless the IOC goes away first.
            let put_result = loop {
                tokio::select! {
                    r = &mut put => break r,
                    ev = write_events.recv() => if matches!(ev, Some(PvEvent::Disconnected) | None) {
                        return fail(pv.disconnected().to_string());
                    },
                }
            };
            if let Err(e) = put_result {
                return fail(e.to_string());
            }
            let Some(updates) = updates.as_mut() else {
                done.set_finished();
                return;
            };
            if readback
                .get()
                .is_ok_and(|u| matches(&u.value, &value, options.tolerance))
            {
                done.set_finished();
                return;
            }
            while let Some(ev) = updates.recv().await {
                match ev {
                    PvEvent::Update(u) if matches(&u.value, &value, options.tolerance) => {
                        done.set_finished();
                        return;
                    }
                    PvEvent::Disconnected => return fail(readback.disconnected().to_string()),
                    _ => {}
                }
            }
        });
        Ok(status)
    }

    fn position(&self) -> Value {
        self.read.get().map(|u| u.value).unwrap_or(Value::Null)
    }
}

/// A read-only PV as a device, after ophyd's `EpicsSignalRO(read_pv)`: a
/// `set` is refused; subscribable as [`EpicsSignal`].
///
/// ```no_run
/// use skyrun_epics::{CaClient, EpicsSignalRO};
/// # actix_rt::System::new().block_on(async {
/// let ca = CaClient::start().unwrap();
/// let current = EpicsSignalRO::connect(ca.as_ref(), "ring_current", "SR:CURRENT", 2.0).await.unwrap();
/// # });
/// ```
pub struct EpicsSignalRO(EpicsSignal);

impl EpicsSignalRO {
    /// Connects `read_pv` within `connect_timeout` seconds.
    pub async fn connect(
        client: &dyn PvClient,
        name: &str,
        read_pv: &str,
        connect_timeout: f64,
    ) -> Result<Self, ConnectError> {
        EpicsSignal::connect(client, name, read_pv, None, connect_timeout)
            .await
            .map(EpicsSignalRO)
    }

    /// A read-only signal over a PV already connected.
    pub fn from_pv(name: &str, read: Pv) -> Self {
        EpicsSignalRO(EpicsSignal::from_pvs(name, read, None))
    }

    /// The PV read.
    pub fn read_pv(&self) -> &Pv {
        &self.0.read
    }
}

impl Device for EpicsSignalRO {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn shared_name(&self) -> Arc<str> {
        self.0.name.clone()
    }
    fn type_name(&self) -> &'static str {
        "EpicsSignalRO"
    }
    fn repr(&self) -> String {
        format!(
            "EpicsSignalRO(read_pv='{}', name='{}')",
            self.0.read.name(),
            self.0.name
        )
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(&mut self.0)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        Some(&mut self.0)
    }
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        Some(&mut self.0)
    }
}
