//! The standard plans a plan file may name, parsed from their arguments and
//! built on running devices.

use std::fmt;

use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

use super::args::{takes, Args, DeviceRef, Need};
use super::devices::{DeviceSet, Devices};
use super::error::{ConfigError, ErrorKind};
use super::{finite, MAX_POINTS};
use crate::plan::Plan;
use crate::plan_stubs as bps;
use crate::plans;
use crate::preprocessors::reset_positions_wrapper;

/// The standard plans a plan file may name.
pub const STANDARD_PLANS: &[&str] = &["count", "scan", "rel_scan", "list_scan", "grid_scan", "fly"];

fn names(refs: &[DeviceRef]) -> String {
    super::families::ref_names(refs)
}

/// One axis of a grid scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The motor.
    pub motor: DeviceRef,
    /// First position.
    pub start: f64,
    /// Last position.
    pub stop: f64,
    /// Number of positions.
    pub num: usize,
}

/// A standard plan with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum StandardPlan {
    /// `count(detectors, num, delay)`.
    Count {
        /// Detectors.
        detectors: Vec<DeviceRef>,
        /// Readings.
        num: usize,
        /// Seconds between readings.
        delay: f64,
    },
    /// `scan` or, with `relative`, `rel_scan`.
    Scan {
        /// Detectors.
        detectors: Vec<DeviceRef>,
        /// The motor.
        motor: DeviceRef,
        /// First position.
        start: f64,
        /// Last position.
        stop: f64,
        /// Points.
        num: usize,
        /// Positions relative to the motor's position at the start.
        relative: bool,
    },
    /// `list_scan(detectors, motor, positions)`.
    ListScan {
        /// Detectors.
        detectors: Vec<DeviceRef>,
        /// The motor.
        motor: DeviceRef,
        /// Positions.
        positions: Vec<f64>,
    },
    /// `grid_scan(detectors, axes, snake)`.
    GridScan {
        /// Detectors.
        detectors: Vec<DeviceRef>,
        /// Axes, slowest first.
        axes: Vec<Axis>,
        /// Snake the faster axes.
        snake: bool,
    },
    /// `fly(flyers)`.
    Fly {
        /// Flyers.
        flyers: Vec<DeviceRef>,
    },
}

impl StandardPlan {
    /// The plan's name (`scan`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            StandardPlan::Count { .. } => "count",
            StandardPlan::Scan {
                relative: false, ..
            } => "scan",
            StandardPlan::Scan { relative: true, .. } => "rel_scan",
            StandardPlan::ListScan { .. } => "list_scan",
            StandardPlan::GridScan { .. } => "grid_scan",
            StandardPlan::Fly { .. } => "fly",
        }
    }

    /// Parses `name` with its arguments.
    pub(crate) fn parse(name: &str, a: &Args<'_>) -> Result<Self, ConfigError> {
        let r = a.raw;
        let det = |a: &Args<'_>| {
            a.devices(
                &r.detectors,
                "detectors",
                Need::PlanDetector,
                "a detector",
                false,
            )
        };
        Ok(match name {
            "count" => {
                a.only(takes(name))?;
                StandardPlan::Count {
                    detectors: a.devices(
                        &r.detectors,
                        "detectors",
                        Need::PlanDetector,
                        "a detector",
                        true,
                    )?,
                    num: r.num.as_ref().map_or(Ok(1), |n| a.points(n, "num"))?,
                    delay: a.opt_nonneg(&r.delay, "delay")?.unwrap_or(0.0),
                }
            }
            "scan" | "rel_scan" => {
                a.only(takes(name))?;
                StandardPlan::Scan {
                    detectors: det(a)?,
                    motor: a.req_device(&r.motor, "motor", Need::PlanMotor, "the motor")?,
                    start: a.f64(&r.start, "start")?,
                    stop: a.f64(&r.stop, "stop")?,
                    num: a.points(a.req(&r.num, "num")?, "num")?,
                    relative: name == "rel_scan",
                }
            }
            "list_scan" => {
                a.only(takes(name))?;
                let ps = a.req(&r.positions, "positions")?;
                if ps.get_ref().len() as u64 > MAX_POINTS {
                    return Err(a.src.err(
                        &ps.span(),
                        ErrorKind::TooLarge {
                            what: "the number of positions".into(),
                            value: ps.get_ref().len() as u128,
                            max: MAX_POINTS,
                        },
                    ));
                }
                StandardPlan::ListScan {
                    detectors: det(a)?,
                    motor: a.req_device(&r.motor, "motor", Need::PlanMotor, "the motor")?,
                    positions: ps
                        .get_ref()
                        .iter()
                        .map(|p| finite(a.src, p, &a.what("positions")))
                        .collect::<Result<_, _>>()?,
                }
            }
            "grid_scan" => {
                a.only(takes(name))?;
                let raw_axes = a.req(&r.axes, "axes")?;
                if raw_axes.get_ref().is_empty() {
                    return Err(a.src.err(
                        &raw_axes.span(),
                        ErrorKind::Invalid(format!(
                            "{} must have at least one axis",
                            a.what("axes")
                        )),
                    ));
                }
                let mut axes = Vec::new();
                let mut total: u128 = 1;
                for (i, ax) in raw_axes.get_ref().iter().enumerate() {
                    let sub = Args {
                        raw: a.raw,
                        src: a.src,
                        context: format!("axis {} of {}", i + 1, a.context),
                        span: ax.span(),
                    };
                    let x = ax.get_ref();
                    let axis = Axis {
                        motor: sub.req_device(&x.motor, "motor", Need::PlanMotor, "the motor")?,
                        start: sub.f64(&x.start, "start")?,
                        stop: sub.f64(&x.stop, "stop")?,
                        num: sub.points(sub.req(&x.num, "num")?, "num")?,
                    };
                    total = total.saturating_mul(axis.num as u128);
                    axes.push(axis);
                }
                if total > MAX_POINTS as u128 {
                    return Err(a.src.err(
                        &raw_axes.span(),
                        ErrorKind::TooLarge {
                            what: "the number of grid points".into(),
                            value: total,
                            max: MAX_POINTS,
                        },
                    ));
                }
                StandardPlan::GridScan {
                    detectors: det(a)?,
                    axes,
                    snake: r.snake.as_ref().is_some_and(|s| *s.get_ref()),
                }
            }
            "fly" => {
                a.only(takes(name))?;
                StandardPlan::Fly {
                    flyers: a.devices(&r.flyers, "flyers", Need::Flyer, "a flyer", true)?,
                }
            }
            other => {
                return Err(a.src.err(
                    &a.span,
                    ErrorKind::UnknownName {
                        what: "plan",
                        name: other.to_owned(),
                        known: STANDARD_PLANS.join(", "),
                    },
                ))
            }
        })
    }

    /// Every device the plan names.
    pub fn devices(&self) -> Vec<&DeviceRef> {
        match self {
            StandardPlan::Count { detectors, .. } => detectors.iter().collect(),
            StandardPlan::Scan {
                detectors, motor, ..
            }
            | StandardPlan::ListScan {
                detectors, motor, ..
            } => detectors.iter().chain([motor]).collect(),
            StandardPlan::GridScan {
                detectors, axes, ..
            } => detectors
                .iter()
                .chain(axes.iter().map(|a| &a.motor))
                .collect(),
            StandardPlan::Fly { flyers } => flyers.iter().collect(),
        }
    }

    /// The events the plan emits (`num_points`; for `fly`, the flyers' points).
    pub fn num_points(&self, set: &DeviceSet) -> u64 {
        match self {
            StandardPlan::Count { num, .. } | StandardPlan::Scan { num, .. } => *num as u64,
            StandardPlan::ListScan { positions, .. } => positions.len() as u64,
            StandardPlan::GridScan { axes, .. } => axes.iter().map(|a| a.num as u64).product(),
            StandardPlan::Fly { flyers } => flyers
                .iter()
                .filter_map(|f| match set.get(&f.name).map(|d| &d.config) {
                    Some(super::DeviceConfig::Flyer(c)) => Some(c.num_points as u64),
                    _ => None,
                })
                .sum(),
        }
    }

    /// The plan, on running `devices`, with start-document metadata `md`.
    pub fn build(&self, devices: &Devices, md: &Map<String, Value>) -> Result<Plan, ConfigError> {
        let dets = |d: &[DeviceRef]| {
            d.iter()
                .map(|d| d.resolve(devices))
                .collect::<Result<Vec<_>, _>>()
        };
        let md = md.clone();
        Ok(match self {
            StandardPlan::Count {
                detectors,
                num,
                delay,
            } => plans::count_with(dets(detectors)?, *num, *delay, md),
            StandardPlan::Scan {
                detectors,
                motor,
                start,
                stop,
                num,
                relative: false,
            } => plans::scan_with(
                dets(detectors)?,
                &motor.resolve(devices)?,
                *start,
                *stop,
                *num,
                md,
            ),
            StandardPlan::Scan {
                detectors,
                motor,
                start,
                stop,
                num,
                relative: true,
            } => rel_scan_with(
                dets(detectors)?,
                motor.resolve(devices)?,
                *start,
                *stop,
                *num,
                md,
            ),
            StandardPlan::ListScan {
                detectors,
                motor,
                positions,
            } => plans::list_scan_with(
                dets(detectors)?,
                &motor.resolve(devices)?,
                positions.clone(),
                md,
            ),
            StandardPlan::GridScan {
                detectors,
                axes,
                snake,
            } => {
                let axes = axes
                    .iter()
                    .map(|a| Ok((a.motor.resolve(devices)?, a.start, a.stop, a.num)))
                    .collect::<Result<Vec<_>, ConfigError>>()?;
                plans::grid_scan(dets(detectors)?, axes, *snake)
            }
            StandardPlan::Fly { flyers } => plans::fly(dets(flyers)?),
        })
    }
}

/// `rel_scan` with user metadata (the library's `rel_scan` takes none).
fn rel_scan_with(
    dets: Vec<DeviceHandle>,
    motor: DeviceHandle,
    start: f64,
    stop: f64,
    num: usize,
    user_md: Map<String, Value>,
) -> Plan {
    let m2 = motor.clone();
    let plan = Plan::new("rel_scan", move |ctx| async move {
        let here = bps::position(&ctx, &motor).await?;
        let mut md = Map::new();
        md.insert("plan_name".into(), "rel_scan".into());
        md.extend(user_md);
        plans::scan_with(dets, &motor, here + start, here + stop, num, md)
            .run(&ctx)
            .await
    });
    reset_positions_wrapper(plan, vec![m2])
}

impl fmt::Display for StandardPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StandardPlan::Count {
                detectors,
                num,
                delay,
            } => {
                write!(f, "count [{}] {num} times", names(detectors))?;
                if *delay > 0.0 {
                    write!(f, ", {delay} s apart")?;
                }
                Ok(())
            }
            StandardPlan::Scan {
                detectors,
                motor,
                start,
                stop,
                num,
                ..
            } => write!(
                f,
                "{} [{}] over {} from {start} to {stop} in {num} points",
                self.name(),
                names(detectors),
                motor.name
            ),
            StandardPlan::ListScan {
                detectors,
                motor,
                positions,
            } => {
                write!(
                    f,
                    "list_scan [{}] over {} at {} positions",
                    names(detectors),
                    motor.name,
                    positions.len()
                )
            }
            StandardPlan::GridScan {
                detectors,
                axes,
                snake,
            } => {
                write!(f, "grid_scan [{}] over", names(detectors))?;
                for (i, a) in axes.iter().enumerate() {
                    let sep = if i == 0 { " " } else { " x " };
                    write!(
                        f,
                        "{sep}{} ({} to {}, {} points)",
                        a.motor.name, a.start, a.stop, a.num
                    )?;
                }
                if *snake {
                    f.write_str(", snaked")?;
                }
                Ok(())
            }
            StandardPlan::Fly { flyers } => write!(f, "fly [{}]", names(flyers)),
        }
    }
}
