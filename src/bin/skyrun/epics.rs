//! EPICS devices for `skyrun run`, `check`, `serve` and `service`: every PV of the
//! device file's `[[epics_motor]]` and `[[epics_signal]]` tables (families
//! included) is connected at once, before the run starts, on one Channel
//! Access client (`skyrun_epics::connect_devices`: a bounded number in
//! flight, one timeout). A PV that does not connect fails the start with one
//! message naming every missing PV and its device. A `pva://` PV goes over
//! PVAccess (experimental), any other over Channel Access; the clients are
//! configured from the environment (`EPICS_CA_ADDR_LIST`,
//! `EPICS_CA_AUTO_ADDR_LIST`, ..., `EPICS_PVA_ADDR_LIST`,
//! `EPICS_PVA_NAME_SERVERS`, ...).
//! `skyrun service` connects them the same way, on one client it keeps
//! across reloads of its environment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use skyrun::config::{DeviceSet, Devices, EpicsDevice};
use skyrun_actors::SpanTracer;
use skyrun_epics::{connect_devices, ConnectedDevice, EpicsSpec, PvClient, PvClients, SetOptions};

use crate::Failure;

/// How `run`, `check` and `serve` connect the device file's EPICS PVs.
#[derive(Debug, Args)]
pub struct EpicsArgs {
    /// How long the EPICS PVs of the device file may take to connect, all
    /// together (they connect at once).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub connect_timeout: f64,
}

/// The connected EPICS devices of a device file, and the client they use.
#[derive(Default)]
pub struct Epics {
    devices: Vec<ConnectedDevice>,
    client: Option<Arc<PvClients>>,
    /// PVs connected, and how long it took.
    pub connected: Option<(usize, Duration)>,
}

/// Keeps the PV clients alive while their devices run.
pub struct Client(#[allow(dead_code)] Option<Arc<PvClients>>);

impl EpicsArgs {
    /// Connects the EPICS devices of `set` (nothing when it has none).
    pub fn resolve(&self, set: &DeviceSet) -> Result<Epics, Failure> {
        connect(set, self.connect_timeout)
    }
}

/// What skyrun-epics connects for a device file's EPICS device.
fn spec(name: &str, e: &skyrun::config::EpicsConfig) -> EpicsSpec {
    match &e.device {
        EpicsDevice::Motor { prefix } => EpicsSpec::Motor {
            name: name.to_owned(),
            prefix: prefix.clone(),
            timeout: e.timeout,
        },
        EpicsDevice::Signal {
            read_pv,
            write_pv,
            read_only,
            put_complete,
            tolerance,
        } => EpicsSpec::Signal {
            name: name.to_owned(),
            read_pv: read_pv.clone(),
            write_pv: write_pv.clone(),
            read_only: *read_only,
            options: SetOptions {
                put_complete: *put_complete,
                tolerance: *tolerance,
                timeout: e.timeout,
            },
        },
    }
}

/// Connects every PV of `set`'s EPICS devices within `timeout` seconds, on
/// PV clients of their own.
pub fn connect(set: &DeviceSet, timeout: f64) -> Result<Epics, Failure> {
    connect_with(set, timeout, PvClients::start)
}

/// As [`connect`], on the client `client` gives (asked only when `set` has
/// EPICS devices): `skyrun service` keeps one client across reloads.
pub fn connect_with(
    set: &DeviceSet,
    timeout: f64,
    client: impl FnOnce() -> Result<Arc<PvClients>, skyrun_epics::ClientError>,
) -> Result<Epics, Failure> {
    let specs: Vec<EpicsSpec> = set.epics_devices().map(|(n, e)| spec(n, e)).collect();
    if specs.is_empty() {
        return Ok(Epics::default());
    }
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(Failure::Usage(anyhow!(
            "--connect-timeout must be between 0 and 3600 seconds, got {timeout}"
        )));
    }
    let client = client().map_err(|e| Failure::Runtime(e.into()))?;
    let started = Instant::now();
    let (devices, pvs) = client
        .runtime()
        .block_on(connect_devices(
            client.as_ref(),
            &specs,
            Duration::from_secs_f64(timeout),
        ))
        .map_err(|e| {
            Failure::Runtime(anyhow!(
                "the EPICS devices of {} did not all connect: {e}",
                set.file()
            ))
        })?;
    Ok(Epics {
        devices,
        client: Some(client),
        connected: Some((pvs, started.elapsed())),
    })
}

impl Epics {
    /// Starts each device as an actor recording its spans with `tracer`.
    /// Must run inside the actix system; keep the returned [`Client`] until
    /// the devices are done with.
    pub fn spawn(self, devices: &mut Devices, tracer: &SpanTracer) -> Client {
        for d in self.devices {
            devices.insert(d.spawn(tracer.clone()));
        }
        Client(self.client)
    }
}
