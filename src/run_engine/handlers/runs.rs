//! `open_run` and `close_run`: the start and stop documents and the run span.

use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use serde_json::{Map, Value};

use super::{ill_formed, illegal, no_args, run_of, Core, Done, FromMsg, Kwargs};
use crate::documents::{new_uid, Document, ExitStatus, RunStart};
use crate::error::PlanError;
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::bundler::OpenRun;
use crate::run_engine::request_context::RequestContext;
use crate::telemetry::spans::{msg_attributes, RUN_SPAN};

/// `open_run(**md)`: every keyword is metadata for the start document.
pub(crate) struct OpenRunArgs<'m> {
    metadata: &'m Map<String, Value>,
}

impl<'m> FromMsg<'m> for OpenRunArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Ok(OpenRunArgs {
            metadata: &msg.kwargs,
        })
    }
}

pub(crate) async fn open_run(
    core: &Core,
    msg: &Msg,
    a: OpenRunArgs<'_>,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    if core.run_index(msg.run.as_deref()).is_some() {
        return Err(illegal(
            msg,
            match &msg.run {
                Some(k) => format!("a run with key '{k}' is already open"),
                None => {
                    "a run is already open; close it first, or give each nested run its own run key"
                        .to_owned()
                }
            },
        ));
    }
    let uid = new_uid();
    let scan_id = {
        let mut st = core.st();
        st.scan_id += 1;
        st.scan_id
    };
    let parent = core.span_parent(&msg.context, None);
    let span_cx = core
        .tracer()
        .start(RUN_SPAN, &parent, msg_attributes(msg))
        .map(|span| Context::new().with_span(span));
    let mut metadata = core.opts().metadata.clone();
    metadata.extend(a.metadata.clone());
    core.emit(Document::Start(RunStart {
        uid: uid.clone(),
        time: skyrun_actors::now(),
        scan_id,
        metadata,
    }));
    let mut st = core.st();
    st.run_uids.push(uid.clone());
    st.runs
        .push(OpenRun::new(msg.run.clone(), uid.clone(), span_cx));
    Ok(Reply::RunUid(uid).into())
}

/// `close_run(exit_status=None, reason=None)`.
pub(crate) struct CloseRunArgs<'m> {
    exit: ExitStatus,
    reason: &'m str,
}

impl<'m> FromMsg<'m> for CloseRunArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["exit_status", "reason"])?;
        let exit = match kw.get("exit_status").and_then(Value::as_str) {
            None | Some("success") => ExitStatus::Success,
            Some("fail") => ExitStatus::Fail,
            Some("abort") => ExitStatus::Abort,
            Some(other) => {
                return Err(ill_formed(
                    msg,
                    format!("exit_status must be 'success', 'fail' or 'abort', not '{other}'"),
                ))
            }
        };
        let reason = kw.str("reason")?.unwrap_or("");
        Ok(CloseRunArgs { exit, reason })
    }
}

pub(crate) async fn close_run(
    core: &Core,
    msg: &Msg,
    a: CloseRunArgs<'_>,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let i = run_of(core, msg)?;
    let run = core.st().runs.remove(i);
    let uid = run.uid.clone();
    core.finish_run(run, a.exit, a.reason);
    Ok(Reply::RunUid(uid).into())
}
