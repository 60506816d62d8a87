//! Connecting many devices at once: every PV of every [`EpicsSpec`] goes to
//! one [`connect_all`] (a bounded number in flight, one timeout), so a
//! beamline of 100 motors and 5,000 signals connects in one round, and a
//! failure names every PV that did not connect, with its device. What the
//! `skyrun` binary does for a device file, and the Python package for
//! `skyrun.epics` devices.

use std::time::Duration;

use skyrun_actors::{DeviceHandle, SpanTracer};

use crate::client::PvClient;
use crate::error::ConnectError;
use crate::motor::EpicsMotor;
use crate::pv::{connect_all, Pv};
use crate::signal::{EpicsSignal, EpicsSignalRO, SetOptions};

/// A device to connect.
#[derive(Debug, Clone, PartialEq)]
pub enum EpicsSpec {
    /// An [`EpicsMotor`] at the record `prefix`, its moves failing after
    /// `timeout` seconds (`None`: never, as ophyd).
    Motor {
        /// The device name.
        name: String,
        /// The record prefix.
        prefix: String,
        /// The move timeout, in seconds.
        timeout: Option<f64>,
    },
    /// An [`EpicsSignal`] (or, `read_only`, an [`EpicsSignalRO`]).
    Signal {
        /// The device name.
        name: String,
        /// The PV read.
        read_pv: String,
        /// The PV written (`None`: `read_pv`).
        write_pv: Option<String>,
        /// An [`EpicsSignalRO`]: never written.
        read_only: bool,
        /// How a set completes.
        options: SetOptions,
    },
}

impl EpicsSpec {
    /// The device name.
    pub fn name(&self) -> &str {
        match self {
            EpicsSpec::Motor { name, .. } | EpicsSpec::Signal { name, .. } => name,
        }
    }

    /// The `(device, pv)` pairs to connect, in the order the device takes them.
    pub fn pvs(&self) -> Vec<(String, String)> {
        match self {
            EpicsSpec::Motor { name, prefix, .. } => EpicsMotor::pvs(name, prefix),
            EpicsSpec::Signal {
                name,
                read_pv,
                write_pv,
                read_only,
                ..
            } => std::iter::once(read_pv)
                .chain(write_pv.iter().filter(|w| !*read_only && *w != read_pv))
                .map(|pv| (name.clone(), pv.clone()))
                .collect(),
        }
    }
}

/// A connected device, not started yet.
pub enum ConnectedDevice {
    /// A motor.
    Motor(EpicsMotor),
    /// A readable and writable signal.
    Signal(EpicsSignal),
    /// A read-only signal.
    ReadOnly(EpicsSignalRO),
}

impl ConnectedDevice {
    /// Starts it as an actor recording its spans with `tracer` (inside an actix system).
    pub fn spawn(self, tracer: SpanTracer) -> DeviceHandle {
        match self {
            ConnectedDevice::Motor(m) => DeviceHandle::builder(m).tracer(tracer).spawn(),
            ConnectedDevice::Signal(s) => DeviceHandle::builder(s).tracer(tracer).spawn(),
            ConnectedDevice::ReadOnly(s) => DeviceHandle::builder(s).tracer(tracer).spawn(),
        }
    }
}

/// Connects every PV of `specs` at once, within `timeout`; the devices come
/// back in `specs` order, and the number of PVs connected.
///
/// ```no_run
/// use skyrun_epics::{connect_devices, CaClient, EpicsSpec, PvClient};
/// let ca = CaClient::start().unwrap();
/// let specs: Vec<EpicsSpec> = (1..=100)
///     .map(|i| EpicsSpec::Motor { name: format!("m{i}"), prefix: format!("BL:MTR{i}"), timeout: None })
///     .collect();
/// let (devices, pvs) = ca
///     .runtime()
///     .block_on(connect_devices(ca.as_ref(), &specs, std::time::Duration::from_secs(2)))
///     .unwrap();
/// assert_eq!((devices.len(), pvs), (100, 1500));
/// ```
pub async fn connect_devices(
    client: &dyn PvClient,
    specs: &[EpicsSpec],
    timeout: Duration,
) -> Result<(Vec<ConnectedDevice>, usize), ConnectError> {
    let per: Vec<Vec<(String, String)>> = specs.iter().map(EpicsSpec::pvs).collect();
    let all: Vec<(String, String)> = per.iter().flatten().cloned().collect();
    let mut got = connect_all(client, &all, timeout).await?.into_iter();
    let mut out = Vec::with_capacity(specs.len());
    for (spec, pvs) in specs.iter().zip(&per) {
        let mut mine: Vec<Pv> = got.by_ref().take(pvs.len()).collect();
        out.push(match spec {
            EpicsSpec::Motor {
                name,
                prefix,
                timeout,
            } => {
                let m = EpicsMotor::from_pvs(name, prefix, mine);
                ConnectedDevice::Motor(match timeout {
                    Some(t) => m.with_timeout(*t),
                    None => m,
                })
            }
            EpicsSpec::Signal {
                name,
                read_only: true,
                ..
            } => ConnectedDevice::ReadOnly(EpicsSignalRO::from_pv(name, mine.remove(0))),
            EpicsSpec::Signal { name, options, .. } => {
                let write = (mine.len() == 2).then(|| mine.pop().expect("two PVs"));
                let read = mine.pop().expect("the read PV");
                ConnectedDevice::Signal(
                    EpicsSignal::from_pvs(name, read, write).with_set_options(*options),
                )
            }
        });
    }
    Ok((out, all.len()))
}
