//! Commands that steer the plan itself: `sleep`, `checkpoint`,
//! `clear_checkpoint`, `rewindable`, `pause` and `null`.

use std::time::Duration;

use serde_json::Value;

use super::{illegal, After, Core, Done};
use crate::error::PlanError;
use crate::msg::args::bundling::NoArgs;
use crate::msg::args::flow::{PauseArgs, RewindableArgs, SleepArgs};
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::request_context::RequestContext;

pub(crate) async fn sleep(
    _: &Core,
    _: &Msg,
    a: SleepArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    tokio::time::sleep(Duration::from_secs_f64(a.secs)).await;
    Ok(Reply::None.into())
}

pub(crate) fn checkpoint(
    core: &Core,
    msg: &Msg,
    _: NoArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let mut st = core.st();
    if st.runs.iter().any(|r| r.is_bundling()) {
        return Err(illegal(
            msg,
            "not allowed in the middle of an event bundle (between 'create' and 'save')",
        ));
    }
    st.msg_cache = Some(Vec::new());
    st.checkpoint_cleared = false;
    st.touched.clear();
    for run in st.runs.iter_mut() {
        run.checkpoint();
    }
    Ok(Done {
        reply: Reply::None,
        after: After::PauseIfRequested,
    })
}

/// Bluesky's `_rewindable`: sets whether a rewind may replay the messages
/// that follow (an engine setting, kept across plans as `RE.rewindable`
/// is), and answers it. A change while the plan can be resumed starts the
/// checkpoint state again, as Bluesky's setter does.
pub(crate) fn rewindable(
    core: &Core,
    _: &Msg,
    a: RewindableArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    Ok(Reply::Value(Value::Bool(core.rewindable(a.flag))).into())
}

pub(crate) fn clear_checkpoint(
    core: &Core,
    _: &Msg,
    _: NoArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let mut st = core.st();
    st.msg_cache = None;
    st.checkpoint_cleared = true;
    Ok(Reply::None.into())
}

pub(crate) fn pause(
    core: &Core,
    msg: &Msg,
    a: PauseArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    if a.defer {
        core.control()
            .request_pause(core.engine_state(), true)
            .map_err(|e| illegal(msg, e.to_string()))?;
        return Ok(Reply::None.into());
    }
    Ok(Done {
        reply: Reply::None,
        after: After::PauseNow,
    })
}

pub(crate) fn null(
    _: &Core,
    _: &Msg,
    _: NoArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    Ok(Reply::None.into())
}
