//! Devices told of a pause (Bluesky's `Pausable`): at a pause the engine
//! calls `pause()` on every pausable device the plan has named since it
//! started, and `resume()` on resume. A device that answers
//! [`Replay::NotAllowed`] (Bluesky's `NoReplayAllowed`) takes the plan's
//! checkpoint state back to now: nothing is replayed on resume, and the plan
//! goes on where it paused.

use opentelemetry::Context;
use skyrun_actors::{DeviceOp, DeviceReply, Replay};

use super::core::EngineCore;

/// Tells every pausable device seen that the engine paused; returns whether
/// all of them allow the rewind. A device that fails to answer is reported
/// on stderr and the pause goes on (the engine stays paused and resumable).
pub(crate) async fn pause_devices(core: &EngineCore) -> Replay {
    let devices = core.st().pausable.clone();
    let cx = Context::new();
    let mut replay = Replay::Allowed;
    for dev in devices.iter() {
        match dev.request(DeviceOp::Pause, &cx).await {
            Ok(DeviceReply::Paused(Replay::NotAllowed)) => replay = Replay::NotAllowed,
            Ok(_) => {}
            Err(e) => eprintln!("skyrun: pausing {}: {e}", dev.name()),
        }
    }
    replay
}

/// Tells every pausable device seen that the engine resumes.
pub(crate) async fn resume_devices(core: &EngineCore) {
    let devices = core.st().pausable.clone();
    let cx = Context::new();
    for dev in devices.iter() {
        if let Err(e) = dev.request(DeviceOp::Resume, &cx).await {
            eprintln!("skyrun: resuming {}: {e}", dev.name());
        }
    }
}
