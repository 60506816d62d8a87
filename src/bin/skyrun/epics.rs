//! EPICS devices for `skyrun run`, `check` and `serve`: every PV of the
//! device file's `[[epics_motor]]` and `[[epics_signal]]` tables (families
//! included) is connected at once, before the run starts, on one Channel
//! Access client (`skyrun_epics::connect_all`: a bounded number in flight,
//! one timeout). A PV that does not connect fails the start with one message
//! naming every missing PV and its device. The client is configured from
//! the environment (`EPICS_CA_ADDR_LIST`, `EPICS_CA_AUTO_ADDR_LIST`, ...).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use skyrun::config::{DeviceSet, Devices, EpicsDevice};
use skyrun_actors::{DeviceHandle, SpanTracer};
use skyrun_epics::{
    connect_all, CaClient, EpicsMotor, EpicsSignal, EpicsSignalRO, Pv, PvClient, SetOptions,
    MOTOR_FIELDS,
};

use crate::Failure;

/// How `run`, `check` and `serve` connect the device file's EPICS PVs.
#[derive(Debug, Args)]
pub struct EpicsArgs {
    /// How long the EPICS PVs of the device file may take to connect, all
    /// together (they connect at once).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub connect_timeout: f64,
}

/// A connected EPICS device, not yet started.
enum Connected {
    Motor(EpicsMotor),
    Signal(EpicsSignal),
    ReadOnly(EpicsSignalRO),
}

/// The connected EPICS devices of a device file, and the client they use.
#[derive(Default)]
pub struct Epics {
    devices: Vec<Connected>,
    client: Option<Arc<CaClient>>,
    /// PVs connected, and how long it took.
    pub connected: Option<(usize, Duration)>,
}

/// Keeps the Channel Access client alive while its devices run.
pub struct Client(#[allow(dead_code)] Option<Arc<CaClient>>);

impl EpicsArgs {
    /// Connects the EPICS devices of `set` (nothing when it has none).
    pub fn resolve(&self, set: &DeviceSet) -> Result<Epics, Failure> {
        connect(set, self.connect_timeout)
    }
}

/// Connects every PV of `set`'s EPICS devices within `timeout` seconds.
pub fn connect(set: &DeviceSet, timeout: f64) -> Result<Epics, Failure> {
    let declared: Vec<_> = set.epics_devices().collect();
    if declared.is_empty() {
        return Ok(Epics::default());
    }
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(Failure::Usage(anyhow!(
            "--connect-timeout must be between 0 and 3600 seconds, got {timeout}"
        )));
    }
    // (device, pv) of every PV, device after device, and how many each takes.
    let mut pvs: Vec<(String, String)> = Vec::new();
    let mut takes: Vec<usize> = Vec::with_capacity(declared.len());
    for (name, e) in &declared {
        let before = pvs.len();
        match &e.device {
            EpicsDevice::Motor { prefix } => pvs.extend(EpicsMotor::pvs(name, prefix)),
            EpicsDevice::Signal {
                read_pv, write_pv, ..
            } => {
                pvs.push((name.to_string(), read_pv.clone()));
                if let Some(w) = write_pv {
                    pvs.push((name.to_string(), w.clone()));
                }
            }
        }
        takes.push(pvs.len() - before);
    }
    let client = CaClient::start().map_err(|e| Failure::Runtime(e.into()))?;
    let started = Instant::now();
    let got = client
        .runtime()
        .block_on(connect_all(
            client.as_ref(),
            &pvs,
            Duration::from_secs_f64(timeout),
        ))
        .map_err(|e| {
            Failure::Runtime(anyhow!(
                "the EPICS devices of {} did not all connect: {e}",
                set.file()
            ))
        })?;
    let elapsed = started.elapsed();
    let mut got = got.into_iter();
    let mut devices = Vec::with_capacity(declared.len());
    for ((name, e), n) in declared.iter().zip(takes) {
        let mut mine: Vec<Pv> = got.by_ref().take(n).collect();
        devices.push(match &e.device {
            EpicsDevice::Motor { prefix } => {
                debug_assert_eq!(mine.len(), MOTOR_FIELDS.len());
                let mut m = EpicsMotor::from_pvs(name, prefix, mine);
                if let Some(t) = e.timeout {
                    m = m.with_timeout(t);
                }
                Connected::Motor(m)
            }
            EpicsDevice::Signal {
                read_only: true, ..
            } => Connected::ReadOnly(EpicsSignalRO::from_pv(name, mine.remove(0))),
            EpicsDevice::Signal {
                put_complete,
                tolerance,
                ..
            } => {
                let write = (mine.len() == 2).then(|| mine.pop().expect("two PVs"));
                let read = mine.pop().expect("the read PV");
                Connected::Signal(EpicsSignal::from_pvs(name, read, write).with_set_options(
                    SetOptions {
                        put_complete: *put_complete,
                        tolerance: *tolerance,
                        timeout: e.timeout,
                    },
                ))
            }
        });
    }
    Ok(Epics {
        devices,
        client: Some(client),
        connected: Some((pvs.len(), elapsed)),
    })
}

impl Epics {
    /// Starts each device as an actor recording its spans with `tracer`.
    /// Must run inside the actix system; keep the returned [`Client`] until
    /// the devices are done with.
    pub fn spawn(self, devices: &mut Devices, tracer: &SpanTracer) -> Client {
        for d in self.devices {
            let t = tracer.clone();
            devices.insert(match d {
                Connected::Motor(m) => DeviceHandle::builder(m).tracer(t).spawn(),
                Connected::Signal(s) => DeviceHandle::builder(s).tracer(t).spawn(),
                Connected::ReadOnly(s) => DeviceHandle::builder(s).tracer(t).spawn(),
            });
        }
        Client(self.client)
    }
}
