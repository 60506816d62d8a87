//! `skyrun bench --scenario epics`: skyrun's EPICS devices against a running
//! IOC (`epics/bench/run.sh` starts one, or the user names theirs), each
//! figure next to the bare Channel Access client measured in the same run:
//!
//! - connecting N PVs (`--pvs 1000,5000`, names from `--pv TEMPLATE`): the
//!   bare client (search + channel, 2,048 at a time) and skyrun devices
//!   (channel, `DBR_CTRL` metadata and a monitor with its first value:
//!   ready to read, 512 at a time);
//! - sequential put-with-completion: the bare client, and an `EpicsSignal`
//!   (`put_complete`) set + wait through its actor and the RunEngine;
//! - `count` of an `EpicsSignalRO` through the RunEngine (events/s);
//! - with `--motor TEMPLATE`: a group move of `--motors N` EpicsMotors
//!   (`mv` of all of them to 0.5, then 1.0, ... `--moves` times).
//!
//! The client searches `--ca-addr host:port` when given, else what the
//! `EPICS_CA_*` environment says. Output: a table, or with `--json` one
//! [`BenchLine`] per figure (scenario `epics`, the figure in `case`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use skyrun::bench::{BenchLine, Devices};
use skyrun::config::PvTemplate;
use skyrun::plan_stubs as bps;
use skyrun::{plans, Msg, Plan, RunEngine};
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};
use skyrun_epics::{
    connect_all, CaClient, EpicsMotor, EpicsSignal, EpicsSignalRO, Pv, PvClient, SetOptions,
};

use crate::{BenchArgs, Failure};

/// The options of `skyrun bench --scenario epics`.
#[derive(Debug, Args)]
pub struct EpicsBenchArgs {
    /// `--scenario epics`: the PVs to connect, a template (`{i}` the index
    /// from 0, `{i:05}` zero-padded), `ca://` optional.
    #[arg(long, value_name = "TEMPLATE", default_value = "BENCH:AO:{i:05}")]
    pv: String,
    /// `--scenario epics`: how many PVs to connect, one measurement each.
    #[arg(long, value_name = "N1,N2,..", default_value = "1000")]
    pvs: String,
    /// `--scenario epics`: the PV put with completion [default: the template at 0].
    #[arg(long, value_name = "PV")]
    put_pv: Option<String>,
    /// `--scenario epics`: the PV counted [default: the template at 1].
    #[arg(long, value_name = "PV")]
    read_pv: Option<String>,
    /// `--scenario epics`: motor records to move together, a template
    /// (`BL:MTR{i}`, indices from 1) [default: no group move].
    #[arg(long, value_name = "TEMPLATE")]
    motor: Option<String>,
    /// `--scenario epics`: how many motors move together.
    #[arg(long, value_name = "N", default_value_t = 100)]
    motors: usize,
    /// `--scenario epics`: how many group moves.
    #[arg(long, value_name = "N", default_value_t = 20)]
    moves: usize,
    /// `--scenario epics`: the IOCs' addresses (host:port, comma-separated),
    /// searched alone [default: EPICS_CA_ADDR_LIST and the rest of the environment].
    #[arg(long, value_name = "HOST:PORT,..")]
    ca_addr: Option<String>,
    /// `--scenario epics`: how long the PVs may take to connect.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pv_timeout: f64,
}

/// Runs the EPICS benchmark.
pub fn bench_epics(args: &BenchArgs) -> Result<ExitCode, Failure> {
    let cfg = Config::of(args).map_err(Failure::Usage)?;
    let lines = measure(&cfg).map_err(Failure::Runtime)?;
    if args.json {
        for l in &lines {
            println!("{}", l.to_json());
        }
    } else {
        print!("{}", table(&lines));
    }
    Ok(ExitCode::SUCCESS)
}

/// The options, checked.
struct Config {
    template: PvTemplate,
    template_text: String,
    pvs: Vec<usize>,
    put_pv: String,
    read_pv: String,
    motor: Option<(PvTemplate, String)>,
    motors: usize,
    moves: usize,
    operations: usize,
    repeat: usize,
    addrs: Option<Vec<SocketAddr>>,
    timeout: Duration,
}

fn bare(name: &str) -> String {
    name.strip_prefix("ca://").unwrap_or(name).to_owned()
}

impl Config {
    fn of(args: &BenchArgs) -> anyhow::Result<Config> {
        let e = &args.epics;
        for (flag, name) in [("--pv", Some(&e.pv)), ("--motor", e.motor.as_ref())]
            .into_iter()
            .chain([
                ("--put-pv", e.put_pv.as_ref()),
                ("--read-pv", e.read_pv.as_ref()),
            ])
        {
            if name.is_some_and(|n| n.starts_with("pva://")) {
                bail!("{flag}: the epics scenario measures Channel Access; pva:// PVs are not benchmarked yet");
            }
        }
        let template = PvTemplate::parse(&bare(&e.pv)).map_err(|m| anyhow!("--pv: {m}"))?;
        let pvs: Vec<usize> = e
            .pvs
            .split(',')
            .map(|s| match s.trim().parse::<usize>() {
                Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
                _ => Err(anyhow!(
                    "--pvs: '{s}' is not a number of PVs (1 to 1,000,000)"
                )),
            })
            .collect::<anyhow::Result<_>>()?;
        let motor = match &e.motor {
            Some(t) => Some((
                PvTemplate::parse(&bare(t)).map_err(|m| anyhow!("--motor: {m}"))?,
                t.clone(),
            )),
            None => None,
        };
        if motor.is_some() && (e.motors == 0 || e.moves == 0) {
            bail!("--motors and --moves must be at least 1");
        }
        let addrs = e
            .ca_addr
            .as_deref()
            .map(|list| {
                list.split(',')
                    .map(|a| {
                        a.trim().parse::<SocketAddr>().map_err(|_| {
                            anyhow!("--ca-addr: '{a}' is not an address (host:port, e.g. 127.0.0.1:5064)")
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?;
        if !(e.pv_timeout.is_finite() && e.pv_timeout > 0.0 && e.pv_timeout <= 3600.0) {
            bail!(
                "--pv-timeout must be between 0 and 3600 seconds, got {}",
                e.pv_timeout
            );
        }
        Ok(Config {
            put_pv: e.put_pv.as_deref().map_or_else(|| template.fill(0), bare),
            read_pv: e.read_pv.as_deref().map_or_else(|| template.fill(1), bare),
            template,
            template_text: e.pv.clone(),
            pvs,
            motor,
            motors: e.motors,
            moves: e.moves,
            operations: args.messages.unwrap_or(2000).clamp(1, 10_000_000) as usize,
            repeat: args.repeat.max(1),
            addrs,
            timeout: Duration::from_secs_f64(e.pv_timeout),
        })
    }

    fn client(&self) -> anyhow::Result<Arc<CaClient>> {
        Ok(match &self.addrs {
            Some(a) => CaClient::with_addresses(a.clone())?,
            None => CaClient::start()?,
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A throughput line: `n` operations in `seconds`.
fn line(case: &str, devices: usize, n: usize, seconds: f64) -> BenchLine {
    BenchLine {
        case: Some(case.to_owned()),
        trace: Some("off".into()),
        devices: Some(Devices::Count(devices as u64)),
        messages: Some(n as u64),
        seconds: Some(seconds),
        per_second: Some(n as f64 / seconds),
        ..BenchLine::new("epics")
    }
}

/// The median of `repeat` runs of `f` (each gives its seconds).
async fn timed<F, Fut>(repeat: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<f64>>,
{
    let mut secs = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        secs.push(f().await?);
    }
    Ok(median(secs))
}

/// How many bare connects are in flight at once: epics-ca-rs closes its
/// circuit past 4,096 pending frames (seen here with 10,000 at once).
const BARE_IN_FLIGHT: usize = 2048;

/// Connects `names` with the bare client (search + channel, at most
/// [`BARE_IN_FLIGHT`] at once), on a fresh client.
async fn bare_connect(cfg: &Config, names: &[(String, String)]) -> anyhow::Result<f64> {
    use futures::StreamExt as _;
    let ca = cfg.client()?;
    let t = Instant::now();
    let chans: Vec<_> =
        futures::stream::iter(names.iter().map(|(_, p)| ca.connect(p, cfg.timeout)))
            // In order (still BARE_IN_FLIGHT at once), so a failure names the
            // first missing PV of the template's range, not whichever timed out first.
            .buffered(BARE_IN_FLIGHT)
            .collect()
            .await;
    let s = t.elapsed().as_secs_f64();
    let failed = chans.iter().filter(|c| c.is_err()).count();
    if let Some(Err(e)) = chans.into_iter().find(Result::is_err) {
        bail!(
            "{failed} of {} PVs did not connect (bare client), the first: {e}",
            names.len()
        );
    }
    Ok(s)
}

/// Connects `names` as devices do (metadata, monitor), on a fresh client.
async fn device_connect(cfg: &Config, names: &[(String, String)]) -> anyhow::Result<f64> {
    let ca = cfg.client()?;
    let t = Instant::now();
    let pvs = connect_all(ca.as_ref(), names, cfg.timeout).await?;
    let s = t.elapsed().as_secs_f64();
    drop(pvs);
    Ok(s)
}

/// `n` sequential puts with completion through the bare client.
async fn bare_puts(pv: &Pv, n: usize, timeout: Duration) -> anyhow::Result<f64> {
    let t = Instant::now();
    for k in 0..n {
        pv.put(&((k % 100) as f64).into(), Some(timeout)).await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `n` sequential set+waits of `sig` in one plan.
async fn set_waits(re: &RunEngine, sig: &DeviceHandle, n: usize) -> anyhow::Result<f64> {
    let s = sig.clone();
    let t = Instant::now();
    re.run(Plan::new("set_wait", move |ctx| async move {
        for k in 0..n {
            bps::abs_set(&ctx, &s, (k % 100) as f64 + 0.5, Some("g"), true).await?;
        }
        Ok(())
    }))
    .await
    .map_err(|e| anyhow!("set+wait failed: {e}"))?;
    Ok(t.elapsed().as_secs_f64())
}

/// `count` of `det`, `n` events.
async fn count(re: &RunEngine, det: &DeviceHandle, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    re.run(plans::count(vec![det.clone()], n, 0.0))
        .await
        .map_err(|e| anyhow!("count failed: {e}"))?;
    Ok(t.elapsed().as_secs_f64())
}

fn measure(cfg: &Config) -> anyhow::Result<Vec<BenchLine>> {
    actix::System::new().block_on(async {
        let mut lines = Vec::new();
        for &n in &cfg.pvs {
            let names: Vec<(String, String)> = (0..n)
                .map(|i| (format!("s{i}"), cfg.template.fill(i)))
                .collect();
            let bare_s = timed(cfg.repeat, || bare_connect(cfg, &names)).await?;
            let dev_s = timed(cfg.repeat, || device_connect(cfg, &names)).await?;
            let with = |l: BenchLine| l.detail("pv", &cfg.template_text);
            lines.push(with(line("connect, bare client", n, n, bare_s)));
            lines.push(with(
                line("connect, devices", n, n, dev_s).detail("limit_seconds", bare_s),
            ));
        }

        let ca = cfg.client()?;
        let puts = cfg.operations;
        let secs = cfg.timeout.as_secs_f64();
        let sig = EpicsSignal::connect(ca.as_ref(), "ao", &cfg.put_pv, None, secs).await?;
        let raw = sig.write_pv().clone();
        let bare_s = timed(cfg.repeat, || bare_puts(&raw, puts, cfg.timeout)).await?;
        let sig = DeviceHandle::spawn(sig.with_set_options(SetOptions {
            put_complete: true,
            ..Default::default()
        }));
        let re = RunEngine::new();
        let set_s = timed(cfg.repeat, || set_waits(&re, &sig, puts)).await?;
        let bare_rate = puts as f64 / bare_s;
        lines.push(
            line("put-with-completion, bare client", 1, puts, bare_s).detail("pv", &cfg.put_pv),
        );
        let set = line("set+wait, EpicsSignal put_complete", 1, puts, set_s);
        let ratio = set.per_second.unwrap_or(0.0) / bare_rate;
        lines.push(
            set.detail("pv", &cfg.put_pv)
                .detail("limit_per_second", bare_rate)
                .detail("ratio", ratio),
        );

        let ro = EpicsSignalRO::connect(ca.as_ref(), "ao_ro", &cfg.read_pv, secs).await?;
        let det = DeviceHandle::spawn(ro);
        let events = cfg.operations;
        let count_s = timed(cfg.repeat, || count(&re, &det, events)).await?;
        lines.push(line("count, EpicsSignalRO", 1, events, count_s).detail("pv", &cfg.read_pv));

        if let Some((template, text)) = &cfg.motor {
            lines.push(group_move(cfg, &ca, &re, template, text).await?);
        }
        Ok(lines)
    })
}

/// `--moves` group moves of `--motors` EpicsMotors (0.5, 1.0, 0.5, ...),
/// each its own run as Bluesky's `RE(bps.mv(...))` is; every readback checked.
async fn group_move(
    cfg: &Config,
    ca: &Arc<CaClient>,
    re: &RunEngine,
    template: &PvTemplate,
    text: &str,
) -> anyhow::Result<BenchLine> {
    let mut motors = Vec::with_capacity(cfg.motors);
    let t = Instant::now();
    let mut pvs = Vec::new();
    for i in 1..=cfg.motors {
        pvs.extend(EpicsMotor::pvs(&format!("m{i}"), &template.fill(i)));
    }
    let got = connect_all(ca.as_ref(), &pvs, cfg.timeout).await?;
    let connect_s = t.elapsed().as_secs_f64();
    let per = skyrun_epics::MOTOR_FIELDS.len();
    let mut got = got.into_iter();
    for i in 1..=cfg.motors {
        let mine: Vec<_> = got.by_ref().take(per).collect();
        motors.push(DeviceHandle::spawn(EpicsMotor::from_pvs(
            &format!("m{i}"),
            &template.fill(i),
            mine,
        )));
    }
    let mut times = Vec::with_capacity(cfg.moves);
    for k in 0..cfg.moves {
        let x = if k % 2 == 0 { 0.5 } else { 1.0 };
        let ms = motors.clone();
        let t = Instant::now();
        re.run(Plan::new("mv", move |ctx| async move {
            for m in &ms {
                ctx.send(Msg::new("set").obj(m).arg(x).group("mv")).await?;
            }
            bps::wait_group(&ctx, Some("mv")).await
        }))
        .await
        .map_err(|e| anyhow!("group move {k} to {x} failed: {e}"))?;
        times.push(t.elapsed().as_secs_f64());
    }
    let last = if cfg.moves % 2 == 1 { 0.5 } else { 1.0 };
    for m in &motors {
        let reply = m
            .request(DeviceOp::Read, &opentelemetry::Context::new())
            .await
            .with_context(|| format!("reading {}", m.name()))?;
        let pos = match reply {
            DeviceReply::Readings(r) => r.get(m.name()).map(|r| r.value.clone()),
            _ => None,
        }
        .unwrap_or_default();
        if pos.as_f64().is_none_or(|p| (p - last).abs() > 1e-9) {
            bail!("{} is at {pos}, not at {last}, after the moves", m.name());
        }
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let total: f64 = times.iter().sum();
    let moves = times.len();
    Ok(line("group move, EpicsMotor", cfg.motors, moves, total)
        .detail("pv", text)
        .detail("move_median_s", median(times))
        .detail("move_best_s", best)
        .detail("connect_seconds", connect_s))
}

/// The lines as a table.
fn table(lines: &[BenchLine]) -> String {
    let mut s = format!(
        "{:<36} {:>8} {:>10} {:>10} {:>12} {:>16}\n",
        "epics (median of repeats)", "devices", "operations", "seconds", "per s", "vs bare client"
    );
    for l in lines {
        let devices = match &l.devices {
            Some(Devices::Count(n)) => n.to_string(),
            _ => "-".into(),
        };
        let vs = match (l.details.get("ratio"), l.details.get("limit_seconds")) {
            (Some(r), _) => format!("{:.0}%", 100.0 * r.as_f64().unwrap_or(0.0)),
            (_, Some(b)) => format!("{:.3} s bare", b.as_f64().unwrap_or(0.0)),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "{:<36} {:>8} {:>10} {:>10.3} {:>12.0} {:>16}\n",
            l.case.as_deref().unwrap_or(""),
            devices,
            l.messages.unwrap_or(0),
            l.seconds.unwrap_or(f64::NAN),
            l.per_second.unwrap_or(f64::NAN),
            vs
        ));
        if let Some(m) = l.details.get("move_median_s") {
            s.push_str(&format!(
                "{:<36} one move: median {:.0} ms, best {:.0} ms; connect {:.3} s\n",
                "",
                m.as_f64().unwrap_or(0.0) * 1e3,
                l.details["move_best_s"].as_f64().unwrap_or(0.0) * 1e3,
                l.details["connect_seconds"].as_f64().unwrap_or(0.0)
            ));
        }
    }
    s
}
