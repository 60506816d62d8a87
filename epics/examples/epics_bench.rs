//! The EPICS bench, skyrun's side: against a running IOC (bench/run.sh
//! starts one), measures
//! - connecting N ao PVs: the bare client (search + connect) and skyrun
//!   devices (connect, metadata, monitor: ready to read);
//! - sequential put-with-completion: the bare client, and an EpicsSignal
//!   `set` + wait through its actor (`put_complete`);
//! - `count` of an EpicsSignalRO through the RunEngine (events/s).
//!
//! ```text
//! cargo run --release -p skyrun-epics --example epics_bench -- 127.0.0.1:PORT PREFIX 1000,5000 2000 2000
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opentelemetry::Context;
use skyrun::{plans, RunEngine};
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};
use skyrun_epics::{connect_all, CaClient, EpicsSignal, EpicsSignalRO, PvClient, SetOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, prefix, ns, puts, events] = args.as_slice() else {
        anyhow::bail!("usage: epics_bench ADDR PREFIX N1,N2,.. PUTS EVENTS");
    };
    let addr: SocketAddr = addr.parse().context("ADDR is host:port")?;
    let ns: Vec<usize> = ns.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let (puts, events): (usize, usize) = (puts.parse()?, events.parse()?);
    let pv = |i: usize| format!("{prefix}:AO:{i:05}");
    let timeout = Duration::from_secs(30);
    actix_rt::System::new().block_on(async move {
        for &n in &ns {
            let names: Vec<(String, String)> = (0..n).map(|i| (format!("s{i}"), pv(i))).collect();
            let ca = CaClient::with_addresses(vec![addr])?;
            let t = Instant::now();
            let chans = futures::future::join_all(names.iter().map(|(_, p)| ca.connect(p, timeout))).await;
            let bare = t.elapsed().as_secs_f64();
            anyhow::ensure!(chans.iter().all(Result::is_ok), "a bare connect failed");
            drop(chans);
            let ca = CaClient::with_addresses(vec![addr])?;
            let t = Instant::now();
            let pvs = connect_all(ca.as_ref(), &names, timeout).await?;
            let dev = t.elapsed().as_secs_f64();
            println!("connect {n} PVs: bare client {bare:.3} s, skyrun devices (metadata + monitor) {dev:.3} s");
            drop(pvs);
        }

        let ca = CaClient::with_addresses(vec![addr])?;
        let sig = EpicsSignal::connect(ca.as_ref(), "ao", &pv(0), None, 5.0).await?;
        let raw = sig.write_pv().clone();
        let t = Instant::now();
        for k in 0..puts {
            raw.put(&(k as f64).into(), Some(timeout)).await?;
        }
        let bare = puts as f64 / t.elapsed().as_secs_f64();
        let h = DeviceHandle::spawn(sig.with_set_options(SetOptions { put_complete: true, ..Default::default() }));
        let t = Instant::now();
        for k in 0..puts {
            let DeviceReply::Status(st) = h.request(DeviceOp::Set((k as f64 + 0.5).into()), &Context::new()).await?
            else { anyhow::bail!("set gave no status") };
            st.wait().await?;
        }
        let dev = puts as f64 / t.elapsed().as_secs_f64();
        println!("sequential put-with-completion: bare client {bare:.0}/s, EpicsSignal set+wait {dev:.0}/s ({:.0}%)", 100.0 * dev / bare);

        let ro = EpicsSignalRO::connect(ca.as_ref(), "ao_ro", &pv(1), 5.0).await?;
        let det = DeviceHandle::spawn(ro);
        let re = RunEngine::new();
        let t = Instant::now();
        re.run(plans::count(vec![det], events, 0.0)).await?;
        println!("count of an EpicsSignalRO: {:.0} events/s ({events} events)", events as f64 / t.elapsed().as_secs_f64());
        Ok(())
    })
}
