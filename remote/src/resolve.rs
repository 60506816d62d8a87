//! Resolving the `[[remote]]` tables of a device file: connect to each NATS
//! URL once, discover each server's devices, pick the ones asked for, and
//! refuse a device name offered twice.

use std::collections::HashMap;

use crate::client::{RemoteClient, RemoteOptions};
use crate::error::RemoteError;
use crate::wire::DeviceInfo;

/// One `[[remote]]` table: a server, optionally some of its devices, optionally its NATS URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTable {
    /// The server's name (`skyrun serve --name`).
    pub server: String,
    /// Only these devices (default: all of them).
    pub devices: Option<Vec<String>>,
    /// The NATS URL (default: the run's).
    pub nats: Option<String>,
}

/// A device found on a server.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The server it lives on.
    pub server: String,
    /// The connection to reach it.
    pub client: RemoteClient,
    /// What discovery told.
    pub info: DeviceInfo,
}

impl Discovered {
    /// The plan-file kind of the device: what the server said, else one
    /// guessed from its capabilities (`motor`, `detector`, `signal`, `flyer`).
    pub fn kind(&self) -> &str {
        if let Some(k) = self.info.kind.as_deref() {
            if matches!(k, "motor" | "detector" | "signal" | "flyer") {
                return k;
            }
        }
        let c = self.info.caps;
        match (c.flyable, c.movable, c.triggerable, c.stageable) {
            (true, ..) => "flyer",
            (_, true, true, _) | (_, true, false, false) => "signal",
            (_, true, false, true) => "motor",
            (_, false, _, true) => "detector",
            _ => "signal",
        }
    }
}

/// Discovers the devices of every table, connecting to each URL once
/// (`default_url` for tables without one).
pub fn discover_all(
    tables: &[RemoteTable],
    default_url: Option<&str>,
    opts: &RemoteOptions,
) -> Result<Vec<Discovered>, RemoteError> {
    let mut clients: HashMap<String, RemoteClient> = HashMap::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for t in tables {
        let url = match t.nats.as_deref().or(default_url) {
            Some(u) => u.to_owned(),
            None => {
                return Err(RemoteError::InvalidUrl {
                    url: String::new(),
                    reason: format!(
                        "device server '{}' needs a NATS URL: pass --nats URL or add nats = \"URL\" to its [[remote]] table",
                        t.server
                    ),
                })
            }
        };
        let client = match clients.get(&url) {
            Some(c) => c.clone(),
            None => {
                let c = RemoteClient::connect(&url, opts.clone())?;
                clients.insert(url.clone(), c.clone());
                c
            }
        };
        let mut infos = client.discover(&t.server)?;
        if let Some(wanted) = &t.devices {
            let mut by_name: HashMap<String, DeviceInfo> =
                infos.drain(..).map(|i| (i.name.clone(), i)).collect();
            for w in wanted {
                match by_name.remove(w) {
                    Some(i) => infos.push(i),
                    None => {
                        let mut known: Vec<&str> = by_name.keys().map(String::as_str).collect();
                        known.extend(infos.iter().map(|i| i.name.as_str()));
                        known.sort_unstable();
                        known.truncate(10);
                        return Err(RemoteError::UnknownDevice {
                            server: t.server.clone(),
                            device: w.clone(),
                            known: if known.is_empty() {
                                " (it offers no devices)".into()
                            } else {
                                format!(" (it offers: {})", known.join(", "))
                            },
                        });
                    }
                }
            }
        }
        for info in infos {
            if let Some(first) = owner.insert(info.name.clone(), t.server.clone()) {
                return Err(RemoteError::DuplicateDevice {
                    device: info.name,
                    first,
                    second: t.server.clone(),
                });
            }
            out.push(Discovered {
                server: t.server.clone(),
                client: client.clone(),
                info,
            });
        }
    }
    Ok(out)
}
