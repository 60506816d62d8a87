//! `[[remote]]` devices for `skyrun run`: discover each device server named
//! in the device file (over `--nats URL` or the table's own `nats`), add its
//! devices to the device set so the plan is checked against them, and
//! start a proxy for each once the actix system runs.

use std::time::Duration;

use anyhow::anyhow;
use skyrun::config::{DeviceKind, DeviceSet, Devices};
use skyrun_remote::{discover_all, Discovered, RemoteOptions, RemoteTable};

use crate::Failure;

/// The remote devices of a run.
#[derive(Default)]
pub struct Remote {
    found: Vec<Discovered>,
}

fn kind(name: &str) -> DeviceKind {
    match name {
        "motor" => DeviceKind::Motor,
        "detector" => DeviceKind::Detector,
        "flyer" => DeviceKind::Flyer,
        _ => DeviceKind::Signal,
    }
}

impl crate::RemoteArgs {
    /// [`resolve`] with these arguments: what `run` and `check` do.
    pub fn resolve(&self, set: &mut DeviceSet) -> Result<Remote, Failure> {
        resolve(set, self.nats.as_deref(), self.remote_timeout)
    }
}

/// Discovers the devices of `set`'s `[[remote]]` tables and adds them to it.
pub fn resolve(set: &mut DeviceSet, nats: Option<&str>, timeout: f64) -> Result<Remote, Failure> {
    if set.remotes().is_empty() {
        return Ok(Remote::default());
    }
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(Failure::Usage(anyhow!(
            "--remote-timeout must be between 0 and 3600 seconds, got {timeout}"
        )));
    }
    let tables: Vec<RemoteTable> = set
        .remotes()
        .iter()
        .map(|r| RemoteTable {
            server: r.server.clone(),
            devices: r.devices.clone(),
            nats: r.nats.clone(),
        })
        .collect();
    let opts = RemoteOptions {
        request_timeout: Duration::from_secs_f64(timeout),
        ..RemoteOptions::default()
    };
    let nats = nats.filter(|u| !u.trim().is_empty());
    let found = discover_all(&tables, nats, &opts).map_err(|e| Failure::Runtime(e.into()))?;
    for d in &found {
        let table = tables
            .iter()
            .position(|t| t.server == d.server)
            .expect("discovered from a table");
        set.add_remote(table, &d.info.name, kind(d.kind()))?;
    }
    Ok(Remote { found })
}

impl Remote {
    /// Starts a proxy device for each remote device. Must run inside the actix system.
    pub fn spawn(&self, devices: &mut Devices) {
        for d in &self.found {
            devices.insert(d.client.spawn_proxy(&d.server, d.info.clone()));
        }
    }
}

/// `--documents nats:PREFIX`: the prefix, when the documents go to NATS.
pub fn nats_prefix(documents: Option<&std::path::Path>) -> Option<&str> {
    documents?.to_str()?.strip_prefix("nats:")
}

/// The JetStream publisher of `--documents nats:PREFIX`, if asked for.
pub fn document_publisher(
    documents: Option<&std::path::Path>,
    nats: Option<&str>,
) -> Result<Option<skyrun_remote::documents::DocumentPublisher>, Failure> {
    let Some(prefix) = nats_prefix(documents) else {
        return Ok(None);
    };
    let Some(url) = nats.filter(|u| !u.trim().is_empty()) else {
        return Err(Failure::Usage(anyhow!(
            "--documents nats:{prefix} needs the NATS URL: pass --nats URL"
        )));
    };
    skyrun_remote::documents::DocumentPublisher::connect(url, prefix, Default::default())
        .map(Some)
        .map_err(|e| Failure::Runtime(e.into()))
}
