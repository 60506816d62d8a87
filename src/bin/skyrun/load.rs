//! Loading a plan file and the device file it runs against.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use skyrun::config::{DeviceSet, ErrorKind, PlanFile, PlanSummary};

use crate::Failure;

/// A plan file, its device file, and the result of checking one against the other.
pub struct Loaded {
    pub plan: PlanFile,
    pub devices: DeviceSet,
    pub devices_path: PathBuf,
    pub summary: PlanSummary,
}

/// Loads `plan` and its device file (`devices`, else the plan's `devices`
/// key) and checks them, without spawning anything.
pub fn load(plan: &Path, devices: Option<&Path>) -> Result<Loaded, Failure> {
    load_with(plan, devices, |_| Ok(())).map(|(l, ())| l)
}

/// Refuses a device file with EPICS devices in a `skyrun` built without them.
#[cfg(not(feature = "epics"))]
pub fn no_epics(set: &DeviceSet) -> Result<(), Failure> {
    match set.epics_devices().next() {
        Some((name, _)) => Err(Failure::Usage(anyhow!(
            "{}: device '{name}' is an EPICS device, and this skyrun was built without the `epics` feature",
            set.file()
        ))),
        None => Ok(()),
    }
}

/// As [`load`], with `resolve` run on the device set before the check
/// (it adds the devices of `[[remote]]` servers).
pub fn load_with<R>(
    plan: &Path,
    devices: Option<&Path>,
    resolve: impl FnOnce(&mut DeviceSet) -> Result<R, Failure>,
) -> Result<(Loaded, R), Failure> {
    let plan_file = PlanFile::load(plan)?;
    let (devices_path, named_by_plan) = match devices {
        Some(p) => (p.to_path_buf(), false),
        None => match plan_file.devices_file() {
            Some(p) => (p, true),
            None => {
                return Err(Failure::Usage(anyhow!(
                    "{}: no device file: pass --devices FILE, or add `devices = \"FILE\"` (relative to the plan file) to the plan file",
                    plan.display()
                )))
            }
        },
    };
    let mut devices = match DeviceSet::load(&devices_path) {
        Ok(d) => d,
        // Say where a device file that cannot be read was named.
        Err(e) if named_by_plan && matches!(e.kind(), ErrorKind::Io(_)) => {
            let at = plan_file
                .devices_location()
                .map_or_else(|| plan.display().to_string(), ToString::to_string);
            return Err(Failure::Usage(anyhow!(
                "{e} (the device file named at {at})"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let resolved = resolve(&mut devices)?;
    let summary = plan_file.check(&devices)?;
    Ok((
        Loaded {
            plan: plan_file,
            devices,
            devices_path,
            summary,
        },
        resolved,
    ))
}
