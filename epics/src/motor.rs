//! `EpicsMotor`: an EPICS motor record as a device, as ophyd's `EpicsMotor`
//! sees it.
//!
//! | field | ophyd component | role here |
//! |---|---|---|
//! | `.RBV` | `user_readback` | reading `NAME`, `position`; subscriptions follow it |
//! | `.VAL` | `user_setpoint` | reading `NAME_user_setpoint`; a move puts it |
//! | `.DMOV` | `motor_done_move` | a move is done when it returns to 1 after the put |
//! | `.MOVN` | `motor_is_moving` | monitored |
//! | `.STOP` | `motor_stop` | `stop` puts 1 |
//! | `.VELO`, `.ACCL`, `.EGU`, `.OFF`, `.DIR` | `velocity`, `acceleration`, `motor_egu`, `user_offset`, `user_offset_dir` | configuration |
//! | `.HLM`, `.LLM` | `high_limit_travel`, `low_limit_travel` | a move outside them is refused before it starts |
//! | `.HLS`, `.LLS`, `.TDIR` | `high_limit_switch`, `low_limit_switch`, `direction_of_travel` | a move ending on the switch of its direction fails |
//!
//! As ophyd decides it, a move is done when DMOV goes to 0 and back to 1
//! after the put (the put callback alone is not trusted: some IOCs answer
//! it before moving). It fails when the IOC goes away, naming the PV and
//! the IOC, on the limit switch of its direction, or when the readback's
//! alarm severity is not NO_ALARM (ophyd's `tolerated_alarm`).

use std::sync::Arc;

use opentelemetry::KeyValue;
use serde_json::Value;
use skyrun_actors::{
    record_move_finish, DataKeys, Device, DeviceContext, DeviceError, Hints, Movable, Readable,
    Reading, Readings, Status, StatusError, Stoppable, Subscribable, Subscription, Triggerable,
};

use crate::client::{PvClient, PvEvent};
use crate::pv::{connect_all, Pv};
use crate::signal::{data_key, reading, timeout};
use crate::subscription::{MakeReadings, PvSubscribers};
use crate::ConnectError;

/// The motor record fields an [`EpicsMotor`] connects, in this order.
pub const MOTOR_FIELDS: [&str; 15] = [
    "RBV", "VAL", "DMOV", "MOVN", "STOP", "VELO", "ACCL", "EGU", "HLM", "LLM", "HLS", "LLS", "OFF",
    "DIR", "TDIR",
];

/// An EPICS motor record, after ophyd's `EpicsMotor(prefix, name=...)`.
///
/// ```no_run
/// use skyrun_epics::{CaClient, EpicsMotor};
/// use skyrun_actors::DeviceHandle;
/// # actix_rt::System::new().block_on(async {
/// let ca = CaClient::start().unwrap();
/// let m1 = EpicsMotor::connect(ca.as_ref(), "m1", "BL:MTR1", 2.0).await.unwrap();
/// let handle = DeviceHandle::spawn(m1);
/// # });
/// ```
pub struct EpicsMotor {
    name: Arc<str>,
    prefix: String,
    pvs: Vec<Pv>,
    timeout: Option<f64>,
    moving: Option<Status>,
    subs: PvSubscribers,
}

/// Indices into `pvs`, in [`MOTOR_FIELDS`] order.
#[derive(Clone, Copy)]
enum F {
    Rbv,
    Val,
    Dmov,
    Stop = 4,
    Velo,
    Accl,
    Egu,
    Hlm,
    Llm,
    Hls,
    Lls,
    Off,
    Dir,
    Tdir,
}

impl EpicsMotor {
    /// The `(device, pv)` pairs of the motor `name` at `prefix`.
    pub fn pvs(name: &str, prefix: &str) -> Vec<(String, String)> {
        MOTOR_FIELDS
            .iter()
            .map(|f| (name.to_owned(), format!("{prefix}.{f}")))
            .collect()
    }

    /// Connects every field of the motor record at `prefix` within
    /// `connect_timeout` seconds.
    pub async fn connect(
        client: &dyn PvClient,
        name: &str,
        prefix: &str,
        connect_timeout: f64,
    ) -> Result<Self, ConnectError> {
        let pvs = connect_all(client, &Self::pvs(name, prefix), timeout(connect_timeout)).await?;
        Ok(Self::from_pvs(name, prefix, pvs))
    }

    /// A motor over its PVs, connected in [`MOTOR_FIELDS`] order.
    ///
    /// # Panics
    /// If `pvs` does not hold one PV per field.
    pub fn from_pvs(name: &str, prefix: &str, pvs: Vec<Pv>) -> Self {
        assert_eq!(pvs.len(), MOTOR_FIELDS.len(), "one PV per motor field");
        EpicsMotor {
            name: Arc::from(name),
            prefix: prefix.to_owned(),
            pvs,
            timeout: None,
            moving: None,
            subs: PvSubscribers::new(),
        }
    }

    /// Fails a move's status after `secs` (default: none, as ophyd).
    pub fn with_timeout(mut self, secs: f64) -> Self {
        self.timeout = (secs.is_finite() && secs > 0.0).then_some(secs);
        self
    }

    /// The record prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The PV of a motor record field (`"DMOV"`, `"RBV"`, ... of [`MOTOR_FIELDS`]).
    pub fn field(&self, field: &str) -> Option<&Pv> {
        let i = MOTOR_FIELDS.iter().position(|f| *f == field)?;
        self.pvs.get(i)
    }

    fn pv(&self, f: F) -> &Pv {
        &self.pvs[f as usize]
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.name)
    }

    /// The user limits `(LLM, HLM)`; ophyd does not enforce equal limits.
    pub fn limits(&self) -> Option<(f64, f64)> {
        let lo = self.pv(F::Llm).get_f64().ok()?;
        let hi = self.pv(F::Hlm).get_f64().ok()?;
        (lo < hi).then_some((lo, hi))
    }

    fn units(&self) -> Arc<str> {
        match self.pv(F::Egu).get().map(|u| u.value) {
            Ok(Value::String(s)) => Arc::from(s),
            _ => Arc::from(""),
        }
    }
}

impl Device for EpicsMotor {
    fn name(&self) -> &str {
        &self.name
    }
    fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }
    fn type_name(&self) -> &'static str {
        "EpicsMotor"
    }
    fn repr(&self) -> String {
        format!(
            "EpicsMotor(prefix='{}', name='{}', read_attrs=['user_readback', 'user_setpoint'], configuration_attrs=['user_offset', 'user_offset_dir', 'velocity', 'acceleration', 'motor_egu'])",
            self.prefix, self.name
        )
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        Some(self)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        Some(self)
    }
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        Some(self)
    }
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        Some(self)
    }
}

/// Follows the readback (RBV) as ophyd's `EpicsMotor.subscribe` does: each
/// RBV update delivers the motor's readings (`NAME` from the update,
/// `NAME_user_setpoint` as VAL's monitor last had it).
impl Subscribable for EpicsMotor {
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        let (key, setpoint_key) = (self.name.to_string(), self.key("user_setpoint"));
        let val = self.pv(F::Val).clone();
        let make = move || -> MakeReadings {
            Box::new(move |u| {
                let sp = val.get().ok()?;
                Some(Readings::from([
                    (
                        key.clone(),
                        Reading {
                            value: u.value.clone(),
                            timestamp: u.timestamp,
                        },
                    ),
                    (
                        setpoint_key.clone(),
                        Reading {
                            value: sp.value,
                            timestamp: sp.timestamp,
                        },
                    ),
                ]))
            })
        };
        let (name, rbv, val) = (
            self.name.clone(),
            self.pv(F::Rbv).clone(),
            self.pv(F::Val).clone(),
        );
        let setpoint_key = self.key("user_setpoint");
        self.subs.subscribe(&rbv, make, || {
            Ok(Readings::from([
                (name.to_string(), reading(&name, &rbv)?),
                (setpoint_key, reading(&name, &val)?),
            ]))
        })
    }
}

const CONFIG: [(F, &str); 5] = [
    (F::Off, "user_offset"),
    (F::Dir, "user_offset_dir"),
    (F::Velo, "velocity"),
    (F::Accl, "acceleration"),
    (F::Egu, "motor_egu"),
];

impl Readable for EpicsMotor {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(Readings::from([
            (self.name.to_string(), reading(&self.name, self.pv(F::Rbv))?),
            (
                self.key("user_setpoint"),
                reading(&self.name, self.pv(F::Val))?,
            ),
        ]))
    }

    fn describe(&self) -> DataKeys {
        DataKeys::from([
            (self.name.to_string(), data_key(self.pv(F::Rbv))),
            (self.key("user_setpoint"), data_key(self.pv(F::Val))),
        ])
    }

    fn read_configuration(&self) -> Readings {
        CONFIG
            .iter()
            .filter_map(|(f, k)| Some((self.key(k), reading(&self.name, self.pv(*f)).ok()?)))
            .collect()
    }

    fn describe_configuration(&self) -> DataKeys {
        CONFIG
            .iter()
            .map(|(f, k)| (self.key(k), data_key(self.pv(*f))))
            .collect()
    }

    fn hints(&self) -> Option<Hints> {
        Some(Hints::fields([&*self.name]))
    }
}

impl Triggerable for EpicsMotor {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        crate::signal::finished(ctx)
    }
}

/// Watches one move: the put, DMOV 0, DMOV 1, then the limit switches.
struct Move {
    name: Arc<str>,
    target: f64,
    status: Status,
    val: Pv,
    rbv: Pv,
    dmov: Pv,
    tdir: Pv,
    hls: Pv,
    lls: Pv,
}

impl Move {
    fn fail(&self, reason: String) {
        self.status
            .set_exception(StatusError::Failed(format!("{}: {reason}", self.name)));
    }

    fn event(&self, name: &'static str, pv: &Pv) {
        self.status
            .add_event(name, vec![KeyValue::new("pv", pv.name().to_owned())]);
    }

    async fn run(self) {
        // Subscribed before the put: no DMOV transition is missed.
        let mut dmov = self.dmov.listen();
        let put = self.val.put(&self.target.into(), None).await;
        if let Err(e) = put {
            return self.fail(format!("the move to {} failed: {e}", self.target));
        }
        self.event("put", &self.val);
        let mut started = false;
        while let Some(ev) = dmov.recv().await {
            match ev {
                PvEvent::Update(u) if u.value.as_f64() == Some(0.0) && !started => {
                    started = true;
                    self.event("DMOV 0", &self.dmov);
                }
                PvEvent::Update(u) if u.value.as_f64() == Some(1.0) && started => {
                    self.event("DMOV 1", &self.dmov);
                    return self.finish();
                }
                PvEvent::Disconnected => {
                    return self.fail(format!(
                        "lost PV '{}' (IOC {}) during the move to {}",
                        self.dmov.name(),
                        self.dmov.server(),
                        self.target
                    ))
                }
                _ => {}
            }
        }
    }

    /// ophyd's `_move_changed` at DMOV 1: the switch of the direction of
    /// travel, then the readback's alarm.
    fn finish(&self) {
        let switch = if self.tdir.get_f64().unwrap_or(1.0) == 0.0 {
            (&self.lls, "low")
        } else {
            (&self.hls, "high")
        };
        if switch.0.get_f64().unwrap_or(0.0) == 1.0 {
            return self.fail(format!(
                "hit the {} limit switch ({}) moving to {}",
                switch.1,
                switch.0.name(),
                self.target
            ));
        }
        let rbv = self.rbv.get();
        if let Ok(u) = &rbv {
            if u.severity != 0 {
                return self.fail(format!(
                    "the readback {} is in alarm (severity {}) after the move to {}",
                    self.rbv.name(),
                    u.severity,
                    self.target
                ));
            }
        }
        if let Some(pos) = rbv.ok().and_then(|u| u.value.as_f64()) {
            record_move_finish(&self.status, pos);
        }
        self.status.set_finished();
    }
}

impl Movable for EpicsMotor {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        let target = value.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
            DeviceError::InvalidArgument {
                device: self.name.to_string(),
                operation: "set",
                reason: format!("expected a finite number, got {value}"),
            }
        })?;
        let start = self.pv(F::Rbv).get_f64().unwrap_or(f64::NAN);
        let status = ctx
            .move_status(target, start, &self.units())
            .timeout(self.timeout)
            .attributes([
                KeyValue::new("setpoint_pv", self.pv(F::Val).name().to_owned()),
                KeyValue::new("readback_pv", self.pv(F::Rbv).name().to_owned()),
                KeyValue::new("done_pv", self.pv(F::Dmov).name().to_owned()),
            ])
            .build();
        if let Some((lo, hi)) = self.limits() {
            if !(lo..=hi).contains(&target) {
                status.set_exception(StatusError::Failed(format!(
                    "{}: position {target} is outside the limits [{lo}, {hi}] ({}, {})",
                    self.name,
                    self.pv(F::Llm).name(),
                    self.pv(F::Hlm).name()
                )));
                return Ok(status);
            }
        }
        if !self.pv(F::Dmov).connected() {
            status.set_exception(StatusError::Failed(format!(
                "{}: {}",
                self.name,
                self.pv(F::Dmov).disconnected()
            )));
            return Ok(status);
        }
        let mv = Move {
            name: self.name.clone(),
            target,
            status: status.clone(),
            val: self.pv(F::Val).clone(),
            rbv: self.pv(F::Rbv).clone(),
            dmov: self.pv(F::Dmov).clone(),
            tdir: self.pv(F::Tdir).clone(),
            hls: self.pv(F::Hls).clone(),
            lls: self.pv(F::Lls).clone(),
        };
        self.pv(F::Val).runtime().spawn(mv.run());
        self.moving = Some(status.clone());
        Ok(status)
    }

    fn position(&self) -> Value {
        self.pv(F::Rbv)
            .get()
            .map(|u| u.value)
            .unwrap_or(Value::Null)
    }

    /// `.VAL` and `.RBV` as their monitors last had them, as ophyd-async's
    /// `Motor.locate()` answers `user_setpoint` and `user_readback`.
    fn locate(&self) -> (Value, Value) {
        let val = self
            .pv(F::Val)
            .get()
            .map(|u| u.value)
            .unwrap_or(Value::Null);
        (val, self.position())
    }
}

impl Stoppable for EpicsMotor {
    /// Puts 1 to STOP; a pending move completes at once with `success`
    /// (ophyd's `EpicsMotor.stop`).
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        self.pv(F::Stop).put_detached(1.into());
        if let Some(st) = self.moving.take() {
            if success {
                if let Ok(pos) = self.pv(F::Rbv).get_f64() {
                    record_move_finish(&st, pos);
                }
                st.set_finished();
            } else {
                st.set_exception(StatusError::Stopped {
                    device: self.name.to_string(),
                });
            }
        }
        Ok(())
    }
}
