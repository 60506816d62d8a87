//! `skyrun bench --scenario remote`: set+wait through device servers (real
//! `skyrun serve` processes over a real nats-server), one at a time and with
//! many in flight, each next to a bare async-nats request/reply to the same
//! server process at the same concurrency, measured in the same run (the
//! limit of the path); one group round over 10,000 remote motors in 4
//! servers; and documents published to JetStream per second.
//!
//! NATS is `$SKYRUN_NATS` when set, else a `nats-server` (on PATH or in
//! /usr/sbin) started on a free loopback port for the run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use skyrun::bench::BenchLine;
use skyrun::plan_stubs as bps;
use skyrun::{Msg, Plan, RunEngine};
use skyrun_actors::DeviceHandle;
use skyrun_remote::documents::{DocumentPublisher, PublisherOptions};
use skyrun_remote::{RemoteClient, RemoteOptions};

use crate::{BenchArgs, Failure};

const SERVERS: usize = 4;
const MOTORS_PER_SERVER: usize = 2500;

/// Child processes killed when the bench ends.
struct Children(Vec<Child>, Option<PathBuf>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.1 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn nats_server() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

fn start_nats(children: &mut Children, dir: &std::path::Path) -> anyhow::Result<String> {
    let bin = nats_server().ok_or_else(|| {
        anyhow!("nats-server not found (apt-get install nats-server, or set SKYRUN_NATS=URL)")
    })?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.join("js"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    children.0.push(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(anyhow!(
                "nats-server did not listen on port {port} within 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(format!("nats://127.0.0.1:{port}"))
}

fn start_server(
    children: &mut Children,
    dir: &std::path::Path,
    url: &str,
    i: usize,
) -> anyhow::Result<()> {
    let file = dir.join(format!("bench{i}.toml"));
    std::fs::write(
        &file,
        format!("[[motor_family]]\nprefix = \"b{i}_\"\ncount = {MOTORS_PER_SERVER}\n"),
    )?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg(&file)
        .args([
            "--nats",
            url,
            "--name",
            &format!("bench{i}"),
            "--echo",
            "--trace",
            "none",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let err = child.stderr.take().expect("piped");
    children.0.push(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(" serves ") => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err(anyhow!("skyrun serve bench{i} did not start within 60 s")),
        }
    }
}

/// One line of the table: skyrun next to its limit.
struct Row {
    case: String,
    skyrun: f64,
    limit: f64,
}

/// Runs the remote benchmark.
pub fn bench_remote(args: &BenchArgs) -> Result<ExitCode, Failure> {
    run(args).map_err(Failure::Runtime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let sequential = args.messages.unwrap_or(2000).max(1) as usize;
    let count = crate::bench::device_count(args).map_err(|e| match e {
        crate::Failure::Usage(e) | crate::Failure::Runtime(e) => e,
    })?;
    let groups: Vec<usize> = match count {
        Some(n) => vec![n.clamp(1, MOTORS_PER_SERVER)],
        None => vec![10, 100, 1000],
    };
    let repeat = args.repeat.max(1);
    let dir = std::env::temp_dir().join(format!("skyrun-bench-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut children = Children(Vec::new(), Some(dir.clone()));
    let url = match std::env::var("SKYRUN_NATS").ok().filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => start_nats(&mut children, &dir)?,
    };
    for i in 0..SERVERS {
        start_server(&mut children, &dir, &url, i)?;
    }
    eprintln!("  {SERVERS} device servers of {MOTORS_PER_SERVER} motors each on {url}");
    let client = RemoteClient::connect(&url, RemoteOptions::default())?;
    let mut infos = Vec::new();
    for i in 0..SERVERS {
        let server = format!("bench{i}");
        for d in client.discover(&server)? {
            infos.push((server.clone(), d));
        }
    }

    // The bare limit, before the engine runs (its own runtime, same connection kind).
    let payload = 80; // about the size of a set request
    let mut limits = Vec::new();
    let lim1 = median(
        (0..repeat)
            .map(|_| {
                skyrun_remote::bench::bare_request_reply(&url, "bench0", 1, sequential, payload)
            })
            .collect::<Result<_, _>>()?,
    );
    limits.push(sequential as f64 / lim1);
    for &n in &groups {
        let rounds = (20_000 / n).max(3);
        let secs = median(
            (0..repeat)
                .map(|_| {
                    skyrun_remote::bench::bare_request_reply(&url, "bench0", n, rounds, payload)
                })
                .collect::<Result<_, _>>()?,
        );
        limits.push((n * rounds) as f64 / secs);
    }

    let system = actix::System::new();
    let group_sizes = groups.clone();
    let (measured, big_round) = system.block_on(async move {
        let groups = group_sizes;
        let handles: Vec<DeviceHandle> = infos
            .into_iter()
            .map(|(s, d)| client.spawn_proxy(&s, d))
            .collect();
        let re = RunEngine::builder().build();
        let mut measured = Vec::new();
        let one = handles[0].clone();
        let mut secs = Vec::new();
        for _ in 0..repeat {
            let m = one.clone();
            let t0 = Instant::now();
            re.run(Plan::new("set", move |ctx| async move {
                for i in 0..sequential {
                    bps::abs_set(&ctx, &m, (i % 10) as f64, Some("g"), true).await?;
                }
                Ok(())
            }))
            .await
            .map_err(|e| anyhow!("remote set+wait failed: {e}"))?;
            secs.push(t0.elapsed().as_secs_f64());
        }
        measured.push(sequential as f64 / median(secs));
        for &n in &groups {
            let rounds = (20_000 / n).max(3);
            let motors: Vec<DeviceHandle> = handles[..n].to_vec();
            let mut secs = Vec::new();
            for _ in 0..repeat {
                let ms = motors.clone();
                let t0 = Instant::now();
                re.run(group_rounds(ms, rounds))
                    .await
                    .map_err(|e| anyhow!("group set+wait failed: {e}"))?;
                secs.push(t0.elapsed().as_secs_f64());
            }
            measured.push((n * rounds) as f64 / median(secs));
        }
        let mut big = Vec::new();
        for _ in 0..repeat.max(3) {
            let t0 = Instant::now();
            re.run(group_rounds(handles.clone(), 1))
                .await
                .map_err(|e| anyhow!("10,000-motor round failed: {e}"))?;
            big.push(t0.elapsed().as_secs_f64());
        }
        Ok::<_, anyhow::Error>((measured, median(big)))
    })?;

    // Documents to JetStream.
    let docs = 100_000usize;
    let publisher = DocumentPublisher::connect(
        &url,
        "bench.docs",
        PublisherOptions {
            stream: "skyrun_bench".into(),
            ..Default::default()
        },
    )?;
    let event = serde_json::json!({
        "uid": "6f1c2a8e-0000-4000-8000-000000000000", "descriptor": "0b2e8f94-0000-4000-8000-000000000000",
        "time": 1.7e9, "seq_num": 1, "data": {"det": 0.5, "motor": 1.0},
        "timestamps": {"det": 1.7e9, "motor": 1.7e9}, "filled": {}
    });
    let cx = opentelemetry::Context::new();
    let t0 = Instant::now();
    publisher.publish(
        "start",
        &serde_json::json!({"uid": "bench-run", "time": 1.7e9}),
        &cx,
    )?;
    for _ in 1..docs {
        publisher.publish("event", &event, &cx)?;
    }
    let report = publisher.finish(Duration::from_secs(120));
    let doc_secs = t0.elapsed().as_secs_f64();
    if report.failed > 0 {
        return Err(anyhow!("documents to JetStream: {report}"));
    }

    let mut rows = vec![Row {
        case: "set+wait, 1 in flight".into(),
        skyrun: measured[0],
        limit: limits[0],
    }];
    for (i, &n) in groups.iter().enumerate() {
        rows.push(Row {
            case: format!("group set+wait, {n} in flight"),
            skyrun: measured[i + 1],
            limit: limits[i + 1],
        });
    }
    if args.json {
        let case = |case: &str| BenchLine {
            case: Some(case.to_owned()),
            ..BenchLine::new("remote")
        };
        for r in &rows {
            let line = BenchLine {
                per_second: Some(r.skyrun),
                ..case(&r.case)
            };
            let line = line
                .detail("limit_per_second", r.limit)
                .detail("ratio", r.skyrun / r.limit);
            println!("{}", line.to_json());
        }
        let round = BenchLine {
            seconds: Some(big_round),
            ..case("10000 motors in 4 servers, one group round")
        };
        println!("{}", round.to_json());
        let documents = BenchLine {
            messages: Some(docs as u64),
            seconds: Some(doc_secs),
            per_second: Some(docs as f64 / doc_secs),
            ..case("documents to JetStream")
        };
        println!("{}", documents.detail("acked", report.acked).to_json());
    } else {
        println!(
            "{:<34} {:>14} {:>22} {:>7}",
            "remote (median of repeats)", "skyrun /s", "bare request/reply /s", "ratio"
        );
        for r in &rows {
            println!(
                "{:<34} {:>14.0} {:>22.0} {:>6.0}%",
                r.case,
                r.skyrun,
                r.limit,
                100.0 * r.skyrun / r.limit
            );
        }
        println!(
            "{:<34} {:>14.3} s",
            "10,000 motors in 4 servers, 1 round", big_round
        );
        println!(
            "{:<34} {:>14.0} /s ({} acked)",
            "documents to JetStream",
            docs as f64 / doc_secs,
            report.acked
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rounds` rounds of one group set on every motor, then a wait.
fn group_rounds(motors: Vec<DeviceHandle>, rounds: usize) -> Plan {
    Plan::new("group", move |ctx| async move {
        for r in 0..rounds {
            for m in &motors {
                ctx.send(Msg::new("set").obj(m).arg((r % 10) as f64).group("G"))
                    .await?;
            }
            bps::wait_group(&ctx, Some("G")).await?;
        }
        Ok(())
    })
}
