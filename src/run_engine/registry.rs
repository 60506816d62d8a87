//! Commands registered at run time, as Bluesky's `RE.register_command(name,
//! handler)`: a handler receives the message and a [`CommandContext`] (to ask
//! devices, with the engine's request timeout and the message's span
//! context) and returns a [`Reply`]. A registered name may replace a command
//! of the table, as in Bluesky. Also kept here, set from outside as the
//! commands are: the hook that sees each message a rewind replays.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use futures::FutureExt;
use opentelemetry::Context;
use parking_lot::RwLock;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply};

use crate::error::PlanError;
use crate::msg::{Command, Msg};
use crate::reply::Reply;

type BoxedFuture = Pin<Box<dyn Future<Output = Result<Reply, PlanError>>>>;
pub(crate) type Handler = Arc<dyn Fn(Msg, CommandContext) -> BoxedFuture + Send + Sync>;
/// Called with each message a rewind replays.
pub type ReplayHook = Arc<dyn Fn(&Msg) + Send + Sync>;

/// What a registered command's handler can use: the engine's way of asking devices.
#[derive(Clone)]
pub struct CommandContext {
    context: Context,
    request_timeout: Option<Duration>,
}

impl CommandContext {
    pub(crate) fn new(context: Context, request_timeout: Option<Duration>) -> Self {
        CommandContext {
            context,
            request_timeout,
        }
    }

    /// The span context the message's device requests carry.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Sends `op` to `device`, carrying the message's span context, within
    /// the engine's request timeout; errors name `command` and the device.
    pub async fn request(
        &self,
        command: &str,
        device: &DeviceHandle,
        op: DeviceOp,
    ) -> Result<DeviceReply, PlanError> {
        request_within(device, op, &self.context, self.request_timeout)
            .await
            .map_err(|source| PlanError::Device {
                command: command.to_owned(),
                device: device.name().to_owned(),
                source,
            })
    }
}

/// Sends `op` to `device` carrying `cx`; past `limit` (when one is set) the
/// device is said not to have answered. What every engine request goes through.
///
/// A plain future, not an `async fn`: every request nests it, and each
/// async layer is one more copy of the future below it.
pub(crate) fn request_within<'a>(
    device: &'a DeviceHandle,
    op: DeviceOp,
    cx: &Context,
    limit: Option<Duration>,
) -> impl Future<Output = Result<DeviceReply, DeviceError>> + 'a {
    let operation = op.name();
    let reply = device.request(op, cx);
    match limit {
        None => Either::Left(reply),
        Some(limit) => Either::Right(tokio::time::timeout(limit, reply).map(move |r| {
            r.unwrap_or_else(|_| {
                Err(DeviceError::NoReply {
                    device: device.name().to_owned(),
                    operation,
                    after: limit.as_secs_f64(),
                })
            })
        })),
    }
}

/// The commands registered on one engine.
#[derive(Default)]
pub(crate) struct Registry {
    handlers: RwLock<HashMap<String, Handler>>,
    /// Some registered name is also a command of the table (checked per message only then).
    overrides: AtomicBool,
    replay_hook: RwLock<Option<ReplayHook>>,
    /// A replay hook is set (checked per `null`).
    has_replay_hook: AtomicBool,
}

impl Registry {
    pub fn register<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(Msg, CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, PlanError>> + 'static,
    {
        let h: Handler = Arc::new(move |m, cx| Box::pin(handler(m, cx)));
        let mut map = self.handlers.write();
        map.insert(name.to_owned(), h);
        self.recompute(&map);
    }

    pub fn unregister(&self, name: &str) -> bool {
        let mut map = self.handlers.write();
        let removed = map.remove(name).is_some();
        self.recompute(&map);
        removed
    }

    fn recompute(&self, map: &HashMap<String, Handler>) {
        let any = map
            .keys()
            .any(|k| !matches!(k.parse::<Command>(), Ok(Command::Other(_))));
        self.overrides.store(any, Ordering::Release);
    }

    /// The handler for `command`, if one is registered (fast for the table's
    /// commands when none is replaced).
    #[inline]
    pub fn handler(&self, command: &Command) -> Option<Handler> {
        if !matches!(command, Command::Other(_)) && !self.overrides.load(Ordering::Acquire) {
            return None;
        }
        self.handlers.read().get(command.as_str()).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.handlers.read().keys().cloned().collect()
    }

    pub fn set_replay_hook(&self, hook: Option<ReplayHook>) {
        self.has_replay_hook
            .store(hook.is_some(), Ordering::Release);
        *self.replay_hook.write() = hook;
    }

    #[inline]
    pub fn has_replay_hook(&self) -> bool {
        self.has_replay_hook.load(Ordering::Relaxed)
    }

    /// The hook for replayed messages (read once per rewind).
    pub fn replay_hook(&self) -> Option<ReplayHook> {
        self.replay_hook.read().clone()
    }
}
