//! `collect` and the streams it fills, after Bluesky's `RunBundler.collect`:
//! a stream declared with `declare_stream(..., collect=True)` (its
//! descriptor from the objects' flat `describe_collect`), or, for an
//! old-style flyer, each stream its `describe_collect` names. Collected
//! events are emitted as event pages; devices that write files give
//! resource / stream resource / stream datum documents
//! (`collect_asset_docs`), several of them up to the frames all have written
//! (`get_index`).

use skyrun_actors::{CollectDescription, DeviceHandle, DeviceOp, DeviceReply};

use super::{illegal, inconsistent, request, run_of, with_run, Core, Done};
use crate::error::{BlueskyException, PlanError};
use crate::msg::args::devices::CollectArgs;
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::bundler::ObjectDescription;
use crate::run_engine::request_context::RequestContext;

/// `describe_collect` of `dev`.
async fn describe_collect(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    cx: &RequestContext<'_>,
) -> Result<CollectDescription, PlanError> {
    if !dev.capabilities().flyable {
        return Err(illegal(
            msg,
            format!(
                "{} is not collectable (it has no describe_collect)",
                dev.name()
            ),
        ));
    }
    match request(core, msg, dev, DeviceOp::DescribeCollect, cx).await? {
        DeviceReply::CollectKeys(d) => Ok(d),
        _ => Err(illegal(
            msg,
            format!(
                "{} answered describe_collect with something else",
                dev.name()
            ),
        )),
    }
}

/// `declare_stream(*objs, name=stream, collect=True)`: the descriptor of
/// `stream` from each object's `describe_collect` (flat, or nested with
/// `stream` its one stream) and configuration.
pub(crate) async fn declare_collected(
    core: &Core,
    msg: &Msg,
    stream: &str,
    devices: &[DeviceHandle],
    cx: &RequestContext<'_>,
) -> Result<(), PlanError> {
    let mut parts = Vec::with_capacity(devices.len());
    for dev in devices {
        let data_keys = match describe_collect(core, msg, dev, cx).await? {
            CollectDescription::Flat(keys) => keys,
            CollectDescription::Streams(mut streams)
                if streams.len() == 1 && streams.contains_key(stream) =>
            {
                streams.swap_remove(stream).unwrap_or_default()
            }
            CollectDescription::Streams(streams) => {
                return Err(inconsistent(
                    msg,
                    BlueskyException::AssertionError,
                    format!(
                        "`declare_stream` contained `collect=True` but `describe_collect` of {} did not return a single Dict[str, DataKey] for stream '{stream}' (it names streams {:?})",
                        dev.name(),
                        streams.keys().collect::<Vec<_>>()
                    ),
                ))
            }
        };
        let configuration = super::bundling::configuration(core, msg, dev, cx).await?;
        parts.push((
            dev.name().to_owned(),
            ObjectDescription {
                data_keys,
                configuration,
                hints: None,
            },
        ));
    }
    let docs = with_run(core, msg, |run| run.declare_collected(stream, parts))?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(())
}

/// The asset documents `dev` has for the event being bundled (after `read`).
pub(crate) async fn read_assets(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    cx: &RequestContext<'_>,
) -> Result<(), PlanError> {
    if !dev.capabilities().external_assets
        || !with_run(core, msg, |run| Ok(run.is_bundling())).unwrap_or(false)
    {
        return Ok(());
    }
    if let DeviceReply::Assets(docs) =
        request(core, msg, dev, DeviceOp::CollectAssetDocs(None), cx).await?
    {
        with_run(core, msg, |run| {
            run.record_assets(docs);
            Ok(())
        })?;
    }
    Ok(())
}

async fn get_index(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    cx: &RequestContext<'_>,
) -> Result<Option<u64>, PlanError> {
    if !dev.capabilities().external_assets {
        return Ok(None);
    }
    match request(core, msg, dev, DeviceOp::GetIndex, cx).await? {
        DeviceReply::Index(i) => Ok(i),
        _ => Ok(None),
    }
}

pub(crate) async fn collect(
    core: &Core,
    msg: &Msg,
    a: CollectArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    run_of(core, msg)?;
    with_run(core, msg, |run| {
        a.devices.iter().for_each(|d| run.collected(d));
        Ok(())
    })?;
    let several = a.devices.len() > 1;
    // Several objects collect together only if each writes stream assets
    // (Bluesky's check_supports(obj, WritesStreamAssets)), up to the frames
    // all of them have written.
    let mut indices = Vec::new();
    for dev in &a.devices {
        match get_index(core, msg, dev, cx).await? {
            Some(i) => indices.push(i),
            None if several => {
                return Err(inconsistent(
                    msg,
                    BlueskyException::AssertionError,
                    format!("{} does not implement all WritesStreamAssets methods (collect_asset_docs and get_index), so it cannot be collected with other objects", dev.name()),
                ))
            }
            None => {}
        }
    }
    let names: Vec<String> = a.devices.iter().map(|d| d.name().to_owned()).collect();
    let stream = with_run(core, msg, |run| run.collect_stream(&names, a.name))?;
    let first = a.devices[0];
    if stream.is_none() {
        if several {
            return Err(illegal(
                msg,
                "If collecting multiple objects you must predeclare a stream for all the objects first and provide the stream name",
            ));
        }
        if !with_run(core, msg, |run| Ok(run.has_local_streams(first.name())))? {
            let streams = match describe_collect(core, msg, first, cx).await? {
                CollectDescription::Streams(s) => s,
                CollectDescription::Flat(_) => {
                    return Err(inconsistent(
                        msg,
                        BlueskyException::AssertionError,
                        format!("Single nested data keys should be pre-declared: {} describes one stream of data keys; declare it first with declare_stream(..., collect=True)", first.name()),
                    ))
                }
            };
            let mut configs = Vec::with_capacity(streams.len());
            for _ in 0..streams.len() {
                configs.push(super::bundling::configuration(core, msg, first, cx).await?);
            }
            let docs = with_run(core, msg, |run| {
                run.describe_local_streams(first.name(), streams, configs)
            })?;
            docs.into_iter().for_each(|d| core.emit(d));
        }
    }
    let writes_stream_assets = !indices.is_empty();
    let min_index = if several {
        indices.iter().copied().min()
    } else {
        None
    };
    let mut assets = Vec::new();
    for dev in &a.devices {
        if dev.capabilities().external_assets {
            if let DeviceReply::Assets(docs) =
                request(core, msg, dev, DeviceOp::CollectAssetDocs(min_index), cx).await?
            {
                assets.extend(docs);
            }
        }
    }
    let mut docs = Vec::new();
    let frames = with_run(core, msg, |run| {
        run.pack_assets(assets, stream.as_deref(), &mut docs)
    })?;
    docs.drain(..).for_each(|d| core.emit(d));
    let mut collected = 0;
    if !several && !writes_stream_assets && first.capabilities().flyable {
        let DeviceReply::Collected(events) =
            request(core, msg, first, DeviceOp::Collect, cx).await?
        else {
            return Err(illegal(
                msg,
                format!("{} answered collect with something else", first.name()),
            ));
        };
        collected = events.len();
        let docs = with_run(core, msg, |run| {
            run.collected_pages(first.name(), stream.as_deref(), events)
        })?;
        docs.into_iter().for_each(|d| core.emit(d));
    } else {
        let Some(stream) = &stream else {
            return Err(inconsistent(
                msg,
                BlueskyException::RuntimeError,
                format!("A `collect` message on {}, which isn't EventCollectable or EventPageCollectable, requires a `name=stream_name` argument", first.name()),
            ));
        };
        with_run(core, msg, |run| {
            run.advance(stream, frames);
            Ok(())
        })?;
    }
    Ok(Reply::Collected(collected).into())
}

/// Bluesky's `backstop_collect`: when a plan ends, each flyer of the run
/// with key `run` that was kicked off and never collected is collected; a
/// failure is reported on stderr and the others are still collected.
pub(crate) async fn backstop(core: &Core, run: Option<&str>) {
    let flyers = match core.run_index(run) {
        Some(i) => core.st().runs[i].take_uncollected(),
        None => return,
    };
    let cx = opentelemetry::Context::new();
    for flyer in flyers {
        let mut msg = Msg::new("collect").obj(&flyer);
        msg.run = run.map(str::to_owned);
        let args = CollectArgs {
            devices: vec![&flyer],
            name: None,
        };
        if let Err(e) = collect(core, &msg, args, &RequestContext::of(&cx)).await {
            eprintln!(
                "skyrun: failed to collect {} at the end of the plan: {e}",
                flyer.name()
            );
        }
    }
}
