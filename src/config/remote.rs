//! `[[remote]]` tables of a device file: devices that live on a device
//! server (`skyrun serve`), reached over NATS.
//!
//! ```toml
//! [[remote]]
//! server = "ioc1"                  # required: the name the server was started with (--name)
//! devices = ["m1", "det"]          # only these of its devices (default: all)
//! nats = "nats://ioc-host:4222"    # default: the run's --nats URL
//! ```
//!
//! This module only reads the tables into plain data ([`RemoteSpec`]); the
//! `skyrun` binary (with `skyrun-remote`) discovers the servers' devices
//! when a run starts and adds them with [`DeviceSet::add_remote`], after
//! which they are checked and used by name like local ones.
//!
//! ```
//! use skyrun::config::{DeviceSet, DeviceKind};
//! let mut set = DeviceSet::parse("[[motor]]\nname = 'x'\n[[remote]]\nserver = 'ioc1'\ndevices = ['m1']\n", "d.toml").unwrap();
//! assert_eq!(set.remotes()[0].server, "ioc1");
//! assert_eq!(set.remotes()[0].devices.as_deref(), Some(&["m1".to_string()][..]));
//! set.add_remote(0, "m1", DeviceKind::Motor).unwrap();
//! assert_eq!(set.kind("m1"), Some(DeviceKind::Motor));
//! let err = set.add_remote(0, "x", DeviceKind::Motor).unwrap_err();
//! assert_eq!(err.to_string(), "d.toml:3:1: device 'x' of device server 'ioc1' has the name of a device declared in this file");
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::devices::{DeviceConfig, DeviceKind, DeviceSet, DeviceSpec};
use super::error::{from_toml, ConfigError, ErrorKind, Location, Src};
use super::Table;

/// The raw shape of a `[[remote]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemote {
    server: Option<Spanned<String>>,
    devices: Option<Spanned<Vec<Spanned<String>>>>,
    nats: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
struct RawRemotes {
    #[serde(default)]
    remote: Vec<Spanned<Table<RawRemote>>>,
}

/// One `[[remote]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSpec {
    /// The server's name.
    pub server: String,
    /// Only these of its devices (`None`: all).
    pub devices: Option<Vec<String>>,
    /// Its NATS URL (`None`: the run's).
    pub nats: Option<String>,
    /// Where the table is.
    pub location: Location,
}

/// A device of a device server, added to a [`DeviceSet`] after discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    /// The server it lives on.
    pub server: String,
    /// What it is used as in plan files.
    pub kind: DeviceKind,
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `[[remote]]` tables of a device file (already accepted in shape by the device-file parser).
pub(crate) fn parse(text: &str, file: &str) -> Result<Vec<RemoteSpec>, ConfigError> {
    let raw: RawRemotes = toml::from_str(text).map_err(|e| from_toml(file, text, &e))?;
    let src = Src { file, text };
    let mut out = Vec::with_capacity(raw.remote.len());
    for t in &raw.remote {
        let span = t.span();
        let r = t.get_ref();
        let server = match &r.server {
            None => {
                return Err(src.err(
                    &span,
                    ErrorKind::Invalid("[[remote]] needs server = \"NAME\"".into()),
                ))
            }
            Some(s) if !valid_token(s.get_ref()) => {
                return Err(src.err(
                    &s.span(),
                    ErrorKind::Invalid(format!(
                        "invalid server name '{}': use letters, digits, '_' and '-'",
                        s.get_ref().escape_debug()
                    )),
                ))
            }
            Some(s) => s.get_ref().clone(),
        };
        if out.iter().any(|o: &RemoteSpec| o.server == server) {
            let s = r.server.as_ref().expect("checked");
            return Err(src.err(
                &s.span(),
                ErrorKind::Invalid(format!("device server '{server}' is named twice")),
            ));
        }
        let devices = match &r.devices {
            None => None,
            Some(list) => {
                let mut names: Vec<String> = Vec::with_capacity(list.get_ref().len());
                for d in list.get_ref() {
                    let n = d.get_ref();
                    if !valid_token(n) {
                        return Err(src.err(
                            &d.span(),
                            ErrorKind::Invalid(format!(
                                "invalid device name '{}': use letters, digits, '_' and '-'",
                                n.escape_debug()
                            )),
                        ));
                    }
                    if names.contains(n) {
                        return Err(src.err(
                            &d.span(),
                            ErrorKind::Invalid(format!("device '{n}' is listed twice")),
                        ));
                    }
                    names.push(n.clone());
                }
                if names.is_empty() {
                    return Err(src.err(
                        &list.span(),
                        ErrorKind::Invalid(
                            "devices = [] picks no device: leave the key out to use them all"
                                .into(),
                        ),
                    ));
                }
                Some(names)
            }
        };
        let nats = match &r.nats {
            Some(u) if u.get_ref().trim().is_empty() => {
                return Err(src.err(
                    &u.span(),
                    ErrorKind::Invalid("nats = \"\" names no URL".into()),
                ))
            }
            Some(u) => Some(u.get_ref().clone()),
            None => None,
        };
        out.push(RemoteSpec {
            server,
            devices,
            nats,
            location: Location::at(file, text, span.start),
        });
    }
    Ok(out)
}

impl DeviceSet {
    /// The `[[remote]]` tables, in file order.
    pub fn remotes(&self) -> &[RemoteSpec] {
        &self.remotes
    }

    /// Adds device `name`, discovered on the server of `remotes()[table]`,
    /// used as `kind`. Refused when the name is already taken.
    pub fn add_remote(
        &mut self,
        table: usize,
        name: &str,
        kind: DeviceKind,
    ) -> Result<(), ConfigError> {
        let spec = self.remotes.get(table).ok_or_else(|| {
            ConfigError::new(
                Location::file(self.file.clone()),
                ErrorKind::Invalid(format!("no [[remote]] table number {table}")),
            )
        })?;
        if let Some(existing) = self.devices.get(name) {
            let what = match &existing.config {
                DeviceConfig::Remote(r) => format!("a device of device server '{}'", r.server),
                _ => "a device declared in this file".to_string(),
            };
            return Err(ConfigError::new(
                spec.location.clone(),
                ErrorKind::Invalid(format!(
                    "device '{name}' of device server '{}' has the name of {what}",
                    spec.server
                )),
            ));
        }
        let line = spec.location.line().unwrap_or(0);
        let server = spec.server.clone();
        self.devices.insert(
            name.to_owned(),
            DeviceSpec {
                name: name.to_owned(),
                config: DeviceConfig::Remote(RemoteConfig { server, kind }),
                line,
                family: None,
            },
        );
        Ok(())
    }
}
