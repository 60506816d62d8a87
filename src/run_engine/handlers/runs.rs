//! `open_run` and `close_run`: the start and stop documents and the run span.

use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;

use super::{illegal, run_of, Core, Done};
use crate::documents::{new_uid, Document, RunStart};
use crate::error::PlanError;
use crate::msg::args::runs::{CloseRunArgs, OpenRunArgs};
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::bundler::OpenRun;
use crate::run_engine::request_context::RequestContext;
use crate::telemetry::spans::{msg_attributes, RUN_SPAN};

pub(crate) fn open_run(
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
    let mut run = OpenRun::new(msg.run.clone(), uid.clone(), span_cx);
    let interruptions = st.record_interruptions.then(|| run.record_interruptions());
    st.runs.push(run);
    drop(st);
    if let Some(descriptor) = interruptions {
        core.emit(descriptor);
    }
    Ok(Reply::RunUid(uid).into())
}

pub(crate) async fn close_run(
    core: &Core,
    msg: &Msg,
    a: CloseRunArgs<'_>,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    super::monitors::settle(core, msg).await;
    let i = run_of(core, msg)?;
    let run = core.st().runs.remove(i);
    let uid = run.uid.clone();
    core.finish_run(run, a.exit, a.reason);
    Ok(Reply::RunUid(uid).into())
}
