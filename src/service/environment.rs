//! The service's environment: the devices and the plans it offers, and how
//! to load them again (`DELETE /environment`, blueapi's reload). A reload
//! runs only while no task is active; it reads the files anew, replaces the
//! engine's devices, prepares the pending tasks again, and gives the
//! environment a new id. When the files no longer load, the error is what
//! `GET /environment` reports, and the service goes on with what it had.

use std::sync::Arc;

use super::catalog::Catalog;
use super::SpawnExtra;
use crate::config::DeviceSet;

/// The devices and the plans.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The devices of the device file.
    pub set: DeviceSet,
    /// The plans.
    pub catalog: Catalog,
}

/// What a reload loads: the environment and the devices to add once the
/// engine has spawned the set's (remote proxies); `Err` says what is wrong
/// with the files.
pub type Loaded = Result<(Environment, Option<SpawnExtra>), String>;

/// Loads the environment anew from where it came from (the service's files).
pub type Loader = Arc<dyn Fn() -> Loaded + Send + Sync>;
