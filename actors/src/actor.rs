//! The actor hosting a device, and the [`DeviceHandle`] the engine talks to it through.
//!
//! Each device runs in its own actix actor: requests are processed one at a
//! time from a bounded mailbox (an answer the device gives later, a
//! [`Movable::locate_later`](crate::Movable::locate_later), is sent when it
//! comes, while the next requests are processed), a panic inside the device
//! is caught and reported as [`DeviceError::Panicked`] (the actor then
//! stops, and later requests get [`DeviceError::Gone`]).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Poll;

use std::time::Duration;

use actix::dev::{MessageResponse, OneshotSender};
use actix::{
    Actor, ActorContext, Addr, ArbiterHandle, AsyncContext, Context, Handler, MailboxError,
};
use futures::FutureExt;
use opentelemetry::Context as OtelContext;

use crate::context::DeviceContext;
use crate::device::{Answer, Capabilities, Device, Later};
use crate::error::DeviceError;
use crate::propagation::TraceCarrier;
use crate::repr::Repr;
use crate::request::{DeviceOp, DeviceReply, DeviceRequest};
use crate::subscription::Subscription;
use crate::tracer::SpanTracer;

/// The default bound of a device's mailbox: a sender waits once this many requests are queued.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 64;

/// The scope name of device spans, as ophyd's.
pub const STATUS_TRACER_SCOPE: &str = "ophyd.status";

/// The actix actor hosting one device.
pub struct DeviceActor {
    device: Box<dyn Device>,
    factory: Option<Factory>,
    repr: Arc<Repr>,
    tracer: SpanTracer,
    mailbox: usize,
}

impl Actor for DeviceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

/// Rebuilds a supervised device after a panic.
type Factory = Box<dyn Fn() -> Box<dyn Device> + Send>;

impl actix::Supervised for DeviceActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        if let Some(factory) = &self.factory {
            self.device = factory();
        }
    }
}

impl Handler<DeviceRequest> for DeviceActor {
    type Result = Answered;

    fn handle(&mut self, req: DeviceRequest, ctx: &mut Self::Context) -> Self::Result {
        let op_name = req.op.name();
        let when = match catch_unwind(AssertUnwindSafe(|| self.device.answer(&req.op))) {
            Ok(Answer::Never) => return Answered::Never,
            Ok(when) => when,
            Err(_) => Answer::Now,
        };
        if let DeviceOp::Locate { gathered } = req.op {
            if let Some(mut later) = self.locate_later(gathered, ctx) {
                // An answer that is ready is sent as one given now.
                let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
                if let Poll::Ready(reply) = later.as_mut().poll(&mut cx) {
                    return Answered::new(when, reply);
                }
                return match when {
                    Answer::After(d) if !d.is_zero() => Answered::Later(
                        async move {
                            let reply = later.await;
                            tokio::time::sleep(d).await;
                            reply
                        }
                        .boxed_local(),
                    ),
                    _ => Answered::Later(later),
                };
            }
        }
        Answered::new(when, self.handle_now(req, op_name, ctx))
    }
}

/// The reply to a [`DeviceRequest`], sent now, later, or never (see [`Device::answer`]).
pub enum Answered {
    /// Sent at once.
    Now(Result<DeviceReply, DeviceError>),
    /// Sent after the delay.
    After(Duration, Result<DeviceReply, DeviceError>),
    /// Sent when the future resolves (a device's answer that comes later,
    /// see [`Movable::locate_later`](crate::Movable::locate_later)); the
    /// actor handles other requests meanwhile.
    Later(Later<DeviceReply>),
    /// Never sent: the reply channel is held until the actor stops.
    Never,
}

impl Answered {
    /// `reply`, sent when `when` says.
    fn new(when: Answer, reply: Result<DeviceReply, DeviceError>) -> Self {
        match when {
            Answer::After(d) if !d.is_zero() => Answered::After(d, reply),
            _ => Answered::Now(reply),
        }
    }
}

impl MessageResponse<DeviceActor, DeviceRequest> for Answered {
    fn handle(
        self,
        ctx: &mut Context<DeviceActor>,
        tx: Option<OneshotSender<Result<DeviceReply, DeviceError>>>,
    ) {
        match self {
            Answered::Now(r) => {
                if let Some(tx) = tx {
                    let _ = tx.send(r);
                }
            }
            Answered::After(d, r) => {
                ctx.run_later(d, move |_, _| {
                    if let Some(tx) = tx {
                        let _ = tx.send(r);
                    }
                });
            }
            Answered::Later(reply) => {
                ctx.spawn(actix::fut::wrap_future(async move {
                    let reply = reply.await;
                    if let Some(tx) = tx {
                        let _ = tx.send(reply);
                    }
                }));
            }
            Answered::Never => {
                ctx.spawn(actix::fut::wrap_future(async move {
                    let _held = tx;
                    std::future::pending::<()>().await
                }));
            }
        }
    }
}

impl DeviceActor {
    fn handle_now(
        &mut self,
        req: DeviceRequest,
        op_name: &'static str,
        ctx: &mut Context<Self>,
    ) -> Result<DeviceReply, DeviceError> {
        match catch_unwind(AssertUnwindSafe(|| self.dispatch(req))) {
            Ok(reply) => reply,
            Err(panic) => Err(self.panicked(ctx, op_name, panic)),
        }
    }

    /// The answer to `locate` when the device gives it later (see
    /// [`Movable::locate_later`](crate::Movable::locate_later)); `None`
    /// when it answers now (or cannot be located: `dispatch` says so).
    fn locate_later(
        &mut self,
        gathered: bool,
        ctx: &mut Context<Self>,
    ) -> Option<Later<DeviceReply>> {
        let device = &mut self.device;
        let later = match catch_unwind(AssertUnwindSafe(|| {
            device.movable().and_then(|m| m.locate_later(gathered))
        })) {
            Ok(later) => later?,
            Err(panic) => {
                let e = self.panicked(ctx, "locate", panic);
                return Some(std::future::ready(Err(e)).boxed_local());
            }
        };
        Some(
            later
                .map(|r| r.map(|(setpoint, readback)| DeviceReply::Located { setpoint, readback }))
                .boxed_local(),
        )
    }

    /// Stops the actor after the device panicked in `operation`; the error
    /// that reports it.
    fn panicked(
        &self,
        ctx: &mut Context<Self>,
        operation: &'static str,
        panic: Box<dyn std::any::Any + Send>,
    ) -> DeviceError {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        ctx.stop();
        DeviceError::Panicked {
            device: self.device.name().to_owned(),
            operation,
            reason,
        }
    }
}

/// Asks a device actor for a [`Subscription`] to its readings.
struct Subscribe;

impl actix::Message for Subscribe {
    type Result = Result<Subscription, DeviceError>;
}

impl Handler<Subscribe> for DeviceActor {
    type Result = Result<Subscription, DeviceError>;

    fn handle(&mut self, _: Subscribe, _: &mut Self::Context) -> Self::Result {
        let unsupported = self.unsupported("subscribe");
        match catch_unwind(AssertUnwindSafe(|| {
            self.device.subscribable().map(|d| d.subscribe())
        })) {
            Ok(Some(sub)) => sub,
            Ok(None) => Err(unsupported),
            Err(_) => Err(DeviceError::Panicked {
                device: self.device.name().to_owned(),
                operation: "subscribe",
                reason: "panicked while subscribing".into(),
            }),
        }
    }
}

impl DeviceActor {
    fn unsupported(&self, op: &'static str) -> DeviceError {
        DeviceError::Unsupported {
            device: self.device.name().to_owned(),
            device_type: self.device.type_name(),
            operation: op,
        }
    }

    fn dispatch(&mut self, req: DeviceRequest) -> Result<DeviceReply, DeviceError> {
        let op = req.op.name();
        let ctx = DeviceContext::for_device(
            self.repr.clone(),
            self.device.type_name(),
            self.tracer.clone(),
            req.trace,
        );
        let d = self.device.as_mut();
        macro_rules! cap {
            ($acc:ident) => {
                match d.$acc() {
                    Some(c) => c,
                    None => return Err(self.unsupported(op)),
                }
            };
        }
        Ok(match req.op {
            DeviceOp::Read => DeviceReply::Readings(cap!(readable).read()?),
            DeviceOp::Describe => DeviceReply::DataKeys(cap!(readable).try_describe()?),
            DeviceOp::ReadConfiguration => {
                DeviceReply::Readings(cap!(readable).try_read_configuration()?)
            }
            DeviceOp::DescribeConfiguration => {
                DeviceReply::DataKeys(cap!(readable).try_describe_configuration()?)
            }
            DeviceOp::Hints => DeviceReply::Hints(cap!(readable).hints()),
            DeviceOp::Set(v) => DeviceReply::Status(cap!(movable).set(&v, &ctx)?),
            DeviceOp::Position => DeviceReply::Position(cap!(movable).position()),
            DeviceOp::Locate { .. } => {
                let (setpoint, readback) = cap!(movable).locate();
                DeviceReply::Located { setpoint, readback }
            }
            DeviceOp::Trigger => DeviceReply::Status(cap!(triggerable).trigger(&ctx)?),
            DeviceOp::Kickoff => DeviceReply::Status(cap!(flyable).kickoff(&ctx)?),
            DeviceOp::Complete => DeviceReply::Status(cap!(flyable).complete(&ctx)?),
            DeviceOp::Collect => DeviceReply::Collected(cap!(flyable).collect()?),
            DeviceOp::DescribeCollect => DeviceReply::CollectKeys(cap!(flyable).describe_collect()),
            DeviceOp::CollectAssetDocs(index) => {
                DeviceReply::Assets(cap!(external_assets).collect_asset_docs(index)?)
            }
            DeviceOp::Prepare(v) => DeviceReply::Status(cap!(preparable).prepare(&v, &ctx)?),
            DeviceOp::GetIndex => DeviceReply::Index(cap!(external_assets).get_index()?),
            DeviceOp::Stage => match cap!(stageable).stage_status()? {
                Some(s) => DeviceReply::Status(s),
                None => DeviceReply::Done,
            },
            DeviceOp::Unstage => match cap!(stageable).unstage_status()? {
                Some(s) => DeviceReply::Status(s),
                None => DeviceReply::Done,
            },
            DeviceOp::Configure(settings) => {
                let (old, new) = cap!(configurable).configure(&settings)?;
                DeviceReply::Configured {
                    old: Box::new(old),
                    new: Box::new(new),
                }
            }
            DeviceOp::Stop { success } => {
                cap!(stoppable).stop(success)?;
                DeviceReply::Done
            }
            DeviceOp::Pause => DeviceReply::Paused(cap!(pausable).pause()?),
            DeviceOp::Resume => {
                cap!(pausable).resume()?;
                DeviceReply::Done
            }
        })
    }
}

/// A clonable handle to a running device actor.
///
/// ```
/// use skyrun_actors::{sim::SynAxis, DeviceHandle, DeviceOp, DeviceReply};
/// use opentelemetry::Context;
/// # actix_rt::System::new().block_on(async {
/// let motor = DeviceHandle::spawn(SynAxis::new("motor"));
/// assert_eq!(motor.name(), "motor");
/// assert!(motor.capabilities().movable && !motor.capabilities().flyable);
/// let DeviceReply::Status(st) = motor.request(DeviceOp::Set(3.0.into()), &Context::new()).await.unwrap()
///     else { panic!() };
/// st.wait().await.unwrap();
/// let err = motor.request(DeviceOp::Kickoff, &Context::new()).await.unwrap_err();
/// assert_eq!(err.to_string(), "device 'motor' (SynAxis) does not support kickoff");
/// # });
/// ```
#[derive(Clone)]
pub struct DeviceHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    type_name: &'static str,
    repr: Arc<Repr>,
    caps: Capabilities,
    addr: Addr<DeviceActor>,
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.inner.repr.get())
    }
}

/// Two handles are equal when they reach the same actor.
impl PartialEq for DeviceHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for DeviceHandle {}

/// So stubs take `&[DeviceHandle]` and `&[&DeviceHandle]` alike.
impl AsRef<DeviceHandle> for DeviceHandle {
    fn as_ref(&self) -> &DeviceHandle {
        self
    }
}

impl std::hash::Hash for DeviceHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.inner), state)
    }
}

/// Options for spawning a device actor.
#[must_use]
pub struct DeviceBuilder {
    device: Box<dyn Device>,
    factory: Option<Factory>,
    tracer: SpanTracer,
    mailbox: usize,
    arbiter: Option<ArbiterHandle>,
}

impl DeviceBuilder {
    /// Records status spans with `tracer` (default: the global `ophyd.status` tracer).
    pub fn tracer(mut self, tracer: SpanTracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Bounds the mailbox at `capacity` queued requests (default [`DEFAULT_MAILBOX_CAPACITY`]).
    pub fn mailbox(mut self, capacity: usize) -> Self {
        self.mailbox = capacity.max(1);
        self
    }

    /// Runs the actor on `arbiter` (default: the current one).
    pub fn arbiter(mut self, arbiter: ArbiterHandle) -> Self {
        self.arbiter = Some(arbiter);
        self
    }

    /// Starts the actor. Must be called inside a running actix system.
    pub fn spawn(mut self) -> DeviceHandle {
        let caps = Capabilities::of(self.device.as_mut());
        let type_name = self.device.type_name();
        let repr = Repr::new(self.device.shared_name(), &self.device.repr());
        let supervised = self.factory.is_some();
        let actor = DeviceActor {
            device: self.device,
            factory: self.factory,
            repr: repr.clone(),
            tracer: self.tracer,
            mailbox: self.mailbox,
        };
        let addr = match (self.arbiter, supervised) {
            (Some(arb), true) => actix::Supervisor::start_in_arbiter(&arb, move |_| actor),
            (Some(arb), false) => DeviceActor::start_in_arbiter(&arb, move |_| actor),
            (None, true) => actix::Supervisor::start(move |_| actor),
            (None, false) => actor.start(),
        };
        DeviceHandle {
            inner: Arc::new(HandleInner {
                type_name,
                repr,
                caps,
                addr,
            }),
        }
    }
}

impl DeviceHandle {
    /// Options for a supervised device: when it panics, the actor is restarted
    /// with a fresh device from `factory` (the failing request still fails).
    ///
    /// ```
    /// use skyrun_actors::{sim::SynAxis, DeviceHandle};
    /// # actix_rt::System::new().block_on(async {
    /// let m = DeviceHandle::supervised(|| SynAxis::new("m")).spawn();
    /// assert!(m.is_running());
    /// # });
    /// ```
    pub fn supervised<D: Device>(factory: impl Fn() -> D + Send + 'static) -> DeviceBuilder {
        let mut b = Self::builder(factory());
        b.factory = Some(Box::new(move || Box::new(factory())));
        b
    }

    /// Starts `device` in its own actor on the current arbiter, with default options.
    pub fn spawn(device: impl Device) -> Self {
        Self::builder(device).spawn()
    }

    /// Options for starting `device`.
    pub fn builder(device: impl Device) -> DeviceBuilder {
        DeviceBuilder {
            device: Box::new(device),
            factory: None,
            tracer: SpanTracer::global(STATUS_TRACER_SCOPE),
            mailbox: DEFAULT_MAILBOX_CAPACITY,
            arbiter: None,
        }
    }

    /// The device name.
    pub fn name(&self) -> &str {
        self.inner.repr.name()
    }

    /// The device type name.
    pub fn type_name(&self) -> &'static str {
        self.inner.type_name
    }

    /// The device's representation (span attribute `msg.obj`).
    pub fn repr(&self) -> &str {
        self.inner.repr.get()
    }

    /// The device's representation, shared (cheap to put in a span attribute).
    pub fn repr_shared(&self) -> Arc<str> {
        self.inner.repr.get().clone()
    }

    /// What the device supports.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    /// Whether the actor is still running.
    pub fn is_running(&self) -> bool {
        self.inner.addr.connected()
    }

    /// A subscription to the device's readings (see [`Subscription`]): the
    /// current reading first, then each new one, until dropped. A device
    /// that is not [`Subscribable`](crate::Subscribable) answers
    /// [`DeviceError::Unsupported`].
    ///
    /// ```
    /// use skyrun_actors::{sim::SynAxis, DeviceHandle, DeviceOp, DeviceReply};
    /// use opentelemetry::Context;
    /// # actix_rt::System::new().block_on(async {
    /// let m = DeviceHandle::spawn(SynAxis::new("m"));
    /// let mut sub = m.subscribe().await.unwrap();
    /// assert_eq!(sub.next().await.unwrap()["m"].value, serde_json::json!(0.0));
    /// let DeviceReply::Status(st) = m.request(DeviceOp::Set(2.0.into()), &Context::new()).await.unwrap()
    ///     else { panic!() };
    /// st.wait().await.unwrap();
    /// // The readback arrives at its target.
    /// let mut last = None;
    /// while let Some(r) = sub.try_next() { last = Some(r); }
    /// assert_eq!(last.unwrap()["m"].value, serde_json::json!(2.0));
    /// # });
    /// ```
    pub async fn subscribe(&self) -> Result<Subscription, DeviceError> {
        match self.inner.addr.send(Subscribe).await {
            Ok(sub) => sub,
            Err(_) => Err(DeviceError::Gone {
                device: self.inner.repr.name().to_string(),
                operation: "subscribe",
            }),
        }
    }

    /// Sends `op` with the span context of `cx` and waits for the reply.
    ///
    /// A plain future over the mailbox's (no async layer of its own: the
    /// engine nests it in every request, and each layer is a copy).
    pub fn request(
        &self,
        op: DeviceOp,
        cx: &OtelContext,
    ) -> impl Future<Output = Result<DeviceReply, DeviceError>> + '_ {
        let operation = op.name();
        let req = DeviceRequest {
            op,
            trace: TraceCarrier::inject(cx),
        };
        self.inner.addr.send(req).map(move |sent| match sent {
            Ok(reply) => reply,
            Err(MailboxError::Closed) | Err(MailboxError::Timeout) => Err(DeviceError::Gone {
                device: self.inner.repr.name().to_string(),
                operation,
            }),
        })
    }
}
