//! Standard plans, after `bluesky.plans`: [`count`], [`scan`], [`rel_scan`],
//! [`list_scan`], [`grid_scan`] and [`fly`]. Each stages its devices, opens a
//! run with Bluesky's start-document metadata, checkpoints every step and
//! emits one event per point in the `primary` stream.

use serde_json::{json, Map, Value};
use skyrun_actors::DeviceHandle;

use crate::error::PlanError;
use crate::plan::Plan;
use crate::plan_stubs as bps;
use crate::preprocessors::{reset_positions_wrapper, run_wrapper, stage_wrapper};

fn names(devices: &[DeviceHandle]) -> Vec<Value> {
    devices.iter().map(|d| Value::from(d.name())).collect()
}

fn reprs(devices: &[DeviceHandle]) -> Vec<Value> {
    devices.iter().map(|d| Value::from(d.repr())).collect()
}

fn metadata(
    plan_name: &str,
    detectors: &[DeviceHandle],
    motors: &[DeviceHandle],
    num_points: usize,
    plan_args: Map<String, Value>,
) -> Map<String, Value> {
    let mut md = Map::new();
    md.insert("plan_type".into(), "generator".into());
    md.insert("plan_name".into(), plan_name.into());
    md.insert("detectors".into(), names(detectors).into());
    if !motors.is_empty() {
        md.insert("motors".into(), names(motors).into());
    }
    md.insert("num_points".into(), num_points.into());
    md.insert("num_intervals".into(), num_points.saturating_sub(1).into());
    md.insert("plan_args".into(), Value::Object(plan_args));
    let dimensions: Vec<Value> = motors
        .iter()
        .map(|m| json!([[m.name()], "primary"]))
        .collect();
    md.insert(
        "hints".into(),
        if dimensions.is_empty() {
            json!({"dimensions": [[["time"], "primary"]]})
        } else {
            json!({ "dimensions": dimensions })
        },
    );
    md
}

/// Bluesky's `plan_pattern`, `plan_pattern_module` and `plan_pattern_args`,
/// from which its consumers rebuild a scan's points.
fn pattern(md: &mut Map<String, Value>, name: &str, args: Value) {
    md.insert("plan_pattern".into(), name.into());
    md.insert("plan_pattern_module".into(), "bluesky.plan_patterns".into());
    md.insert("plan_pattern_args".into(), args);
}

/// grid_scan's `args` as Bluesky records them: motor, start, stop, num, and
/// each axis after the first its snake flag.
fn grid_args(axes: &[(DeviceHandle, f64, f64, usize)], snake: bool) -> Value {
    let mut out = Vec::new();
    for (i, (m, a, b, n)) in axes.iter().enumerate() {
        out.extend([Value::from(m.repr()), (*a).into(), (*b).into(), (*n).into()]);
        if i > 0 {
            out.push(snake.into());
        }
    }
    Value::Array(out)
}

fn check_finite(plan: &str, what: &str, x: f64) -> Result<(), PlanError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(PlanError::failed(format!(
            "{plan}: {what} must be a finite number, got {x}"
        )))
    }
}

/// Wraps a scan body in staging and a run, adding user metadata `md`.
fn standard(
    body: Plan,
    detectors: &[DeviceHandle],
    motors: &[DeviceHandle],
    md: Map<String, Value>,
) -> Plan {
    let mut devices = detectors.to_vec();
    devices.extend(motors.iter().cloned());
    stage_wrapper(run_wrapper(body, md), devices)
}

/// Takes `num` readings of `detectors`, `delay` seconds apart (Bluesky's `count`).
///
/// ```
/// use skyrun::{plans, RunEngine};
/// use skyrun_actors::{sim::{SynAxis, SynGauss}, DeviceHandle};
/// actix::System::new().block_on(async {
///     let m = SynAxis::new("m");
///     let det = DeviceHandle::spawn(SynGauss::new("det", m.probe(), 0.0, 1.0, 1.0));
///     let s = RunEngine::new().run(plans::count(vec![det], 3, 0.0)).await.unwrap();
///     assert_eq!(s.run_uids.len(), 1);
/// });
/// ```
pub fn count(detectors: Vec<DeviceHandle>, num: usize, delay: f64) -> Plan {
    count_with(detectors, num, delay, Map::new())
}

/// [`count`] with user metadata for the start document.
pub fn count_with(
    detectors: Vec<DeviceHandle>,
    num: usize,
    delay: f64,
    user_md: Map<String, Value>,
) -> Plan {
    let mut md = metadata(
        "count",
        &detectors,
        &[],
        num,
        Map::from_iter([
            ("detectors".into(), reprs(&detectors).into()),
            ("num".into(), num.into()),
            ("delay".into(), delay.into()),
        ]),
    );
    md.extend(user_md);
    let dets = detectors.clone();
    let body = Plan::new("count", move |ctx| async move {
        if num == 0 {
            return Err(PlanError::failed("count: num must be at least 1"));
        }
        if !(delay.is_finite() && delay >= 0.0) {
            return Err(PlanError::failed(format!(
                "count: delay must be a non-negative number of seconds, got {delay}"
            )));
        }
        for i in 0..num {
            bps::checkpoint(&ctx).await?;
            bps::trigger_and_read(&ctx, &dets, "primary").await?;
            if delay > 0.0 && i + 1 < num {
                bps::sleep(&ctx, delay).await?;
            }
        }
        Ok(())
    });
    standard(body, &detectors, &[], md)
}

/// Moves `motor` through `positions`, reading `detectors` at each (Bluesky's `list_scan`).
pub fn list_scan(detectors: Vec<DeviceHandle>, motor: &DeviceHandle, positions: Vec<f64>) -> Plan {
    list_scan_with(detectors, motor, positions, Map::new())
}

/// [`list_scan`] with user metadata.
pub fn list_scan_with(
    detectors: Vec<DeviceHandle>,
    motor: &DeviceHandle,
    positions: Vec<f64>,
    user_md: Map<String, Value>,
) -> Plan {
    let mut md = metadata(
        "list_scan",
        &detectors,
        std::slice::from_ref(motor),
        positions.len(),
        Map::from_iter([
            ("detectors".into(), reprs(&detectors).into()),
            ("args".into(), json!([motor.repr(), positions.clone()])),
            ("per_step".into(), "None".into()),
        ]),
    );
    pattern(
        &mut md,
        "inner_list_product",
        json!({"args": [motor.repr(), positions.clone()]}),
    );
    md.extend(user_md);
    points_plan(
        "list_scan",
        detectors,
        vec![motor.clone()],
        positions.into_iter().map(|p| vec![p]).collect(),
        md,
    )
}

fn points_plan(
    name: &'static str,
    detectors: Vec<DeviceHandle>,
    motors: Vec<DeviceHandle>,
    points: Vec<Vec<f64>>,
    md: Map<String, Value>,
) -> Plan {
    let (dets, mots) = (detectors.clone(), motors.clone());
    let body = Plan::new(name, move |ctx| async move {
        if points.is_empty() {
            return Err(PlanError::failed(format!(
                "{name}: there are no points to visit"
            )));
        }
        for p in points.iter().flatten() {
            check_finite(name, "every position", *p)?;
        }
        let mut last = Vec::new();
        for point in &points {
            let step: Vec<(&DeviceHandle, f64)> = mots.iter().zip(point.iter().copied()).collect();
            bps::one_nd_step(&ctx, &dets, &step, &mut last).await?;
        }
        Ok(())
    });
    standard(body, &detectors, &motors, md)
}

fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => vec![],
        1 => vec![start],
        n => (0..n)
            .map(|i| start + (stop - start) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// Moves `motor` from `start` to `stop` in `num` evenly spaced points, reading
/// `detectors` at each (Bluesky's `scan`).
pub fn scan(
    detectors: Vec<DeviceHandle>,
    motor: &DeviceHandle,
    start: f64,
    stop: f64,
    num: usize,
) -> Plan {
    scan_with(detectors, motor, start, stop, num, Map::new())
}

/// [`scan`] with user metadata.
pub fn scan_with(
    detectors: Vec<DeviceHandle>,
    motor: &DeviceHandle,
    start: f64,
    stop: f64,
    num: usize,
    user_md: Map<String, Value>,
) -> Plan {
    let mut md = metadata(
        "scan",
        &detectors,
        std::slice::from_ref(motor),
        num,
        Map::from_iter([
            ("detectors".into(), reprs(&detectors).into()),
            ("num".into(), num.into()),
            ("args".into(), json!([motor.repr(), start, stop])),
            ("per_step".into(), "None".into()),
        ]),
    );
    pattern(
        &mut md,
        "inner_product",
        json!({"num": num, "args": [motor.repr(), start, stop]}),
    );
    md.extend(user_md);
    if !(start.is_finite() && stop.is_finite()) {
        return Plan::new("scan", move |_| async move {
            Err(PlanError::failed(format!(
                "scan: start and stop must be finite numbers, got {start} and {stop}"
            )))
        });
    }
    let points = linspace(start, stop, num)
        .into_iter()
        .map(|p| vec![p])
        .collect();
    points_plan("scan", detectors, vec![motor.clone()], points, md)
}

/// [`scan`] relative to `motor`'s position at the start; the motor returns there after.
pub fn rel_scan(
    detectors: Vec<DeviceHandle>,
    motor: &DeviceHandle,
    start: f64,
    stop: f64,
    num: usize,
) -> Plan {
    let motor = motor.clone();
    let m2 = motor.clone();
    let plan = Plan::new("rel_scan", move |ctx| async move {
        let here = bps::position(&ctx, &motor).await?;
        // Bluesky's rel_scan records the relative start and stop.
        let mut md = Map::new();
        md.insert("plan_name".into(), "rel_scan".into());
        md.insert(
            "plan_args".into(),
            json!({
                "detectors": reprs(&detectors),
                "num": num,
                "args": [motor.repr(), start, stop],
                "per_step": "None",
            }),
        );
        md.insert(
            "plan_pattern_args".into(),
            json!({"num": num, "args": [motor.repr(), start, stop]}),
        );
        scan_with(detectors, &motor, here + start, here + stop, num, md)
            .run(&ctx)
            .await
    });
    reset_positions_wrapper(plan, vec![m2])
}

/// A mesh over several motors: each `(motor, start, stop, num)` axis, the first
/// slowest; with `snake`, every other row of the faster axes runs backwards
/// (Bluesky's `grid_scan`).
pub fn grid_scan(
    detectors: Vec<DeviceHandle>,
    axes: Vec<(DeviceHandle, f64, f64, usize)>,
    snake: bool,
) -> Plan {
    let motors: Vec<DeviceHandle> = axes.iter().map(|a| a.0.clone()).collect();
    let shape: Vec<usize> = axes.iter().map(|a| a.3).collect();
    let total: usize = shape.iter().product();
    let mut md = metadata(
        "grid_scan",
        &detectors,
        &motors,
        total,
        Map::from_iter([
            ("detectors".into(), reprs(&detectors).into()),
            ("args".into(), grid_args(&axes, snake)),
            ("per_step".into(), "None".into()),
        ]),
    );
    md.insert("shape".into(), shape.clone().into());
    md.insert(
        "extents".into(),
        axes.iter().map(|(_, a, b, _)| json!([a, b])).collect(),
    );
    md.insert(
        "snaking".into(),
        (0..axes.len())
            .map(|i| Value::from(snake && i > 0))
            .collect(),
    );
    pattern(
        &mut md,
        "outer_product",
        json!({ "args": grid_args(&axes, snake) }),
    );
    if axes
        .iter()
        .any(|(_, a, b, _)| !(a.is_finite() && b.is_finite()))
    {
        return Plan::new("grid_scan", |_| async {
            Err(PlanError::failed(
                "grid_scan: every start and stop must be a finite number",
            ))
        });
    }
    let grids: Vec<Vec<f64>> = axes
        .iter()
        .map(|(_, a, b, n)| linspace(*a, *b, *n))
        .collect();
    let mut points = Vec::with_capacity(total);
    let mut index = vec![0usize; grids.len()];
    if total > 0 {
        'outer: loop {
            let point: Vec<f64> = index
                .iter()
                .enumerate()
                .map(|(axis, &i)| {
                    // In snake mode, an axis runs backwards when the sum of the slower indices is odd.
                    let backwards =
                        snake && axis > 0 && index[..axis].iter().sum::<usize>() % 2 == 1;
                    let n = grids[axis].len();
                    grids[axis][if backwards { n - 1 - i } else { i }]
                })
                .collect();
            points.push(point);
            for axis in (0..index.len()).rev() {
                index[axis] += 1;
                if index[axis] < grids[axis].len() {
                    continue 'outer;
                }
                index[axis] = 0;
            }
            break;
        }
    }
    points_plan("grid_scan", detectors, motors, points, md)
}

/// Kicks off `flyers`, waits for them to complete and collects their events (Bluesky's `fly`).
pub fn fly(flyers: Vec<DeviceHandle>) -> Plan {
    let md = Map::from_iter([
        ("plan_name".into(), "fly".into()),
        ("plan_type".into(), "generator".into()),
        ("flyers".into(), names(&flyers).into()),
        ("detectors".into(), names(&flyers).into()),
    ]);
    let f2 = flyers.clone();
    let body = Plan::new("fly", move |ctx| async move {
        // As bluesky.plans.fly: kickoff(wait=True) for each flyer, then
        // complete(wait=True) for each, each waiting on group=None.
        for f in &f2 {
            bps::kickoff(&ctx, f, None, true).await?;
        }
        for f in &f2 {
            bps::complete(&ctx, f, None, true).await?;
        }
        for f in &f2 {
            bps::collect(&ctx, f).await?;
        }
        Ok(())
    });
    run_wrapper(body, md)
}
