//! The physical limits the engine is compared with, measured the same way.

use std::time::Instant;

use actix::{Actor, Context, Handler, Message};

struct Ping;
impl Message for Ping {
    type Result = u64;
}

/// A bare actor: the smallest thing actix can host.
struct Bare(u64);
impl Actor for Bare {
    type Context = Context<Self>;
}
impl Handler<Ping> for Bare {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// Seconds for `n` request/response round trips to one actor on this arbiter.
pub async fn actix_roundtrip(n: u64) -> f64 {
    let addr = Bare(0).start();
    let t0 = Instant::now();
    for _ in 0..n {
        addr.send(Ping).await.expect("actor alive");
    }
    t0.elapsed().as_secs_f64()
}

/// Seconds to start `n` bare actors and round-trip one message through each.
pub async fn bare_actors(n: usize) -> f64 {
    let t0 = Instant::now();
    let addrs: Vec<_> = (0..n).map(|_| Bare(0).start()).collect();
    for a in &addrs {
        a.send(Ping).await.expect("actor alive");
    }
    t0.elapsed().as_secs_f64()
}

/// Seconds to pass `n` messages through one bounded crossbeam channel to another thread.
pub fn crossbeam_hop(n: u64) -> f64 {
    let (tx, rx) = crossbeam::channel::bounded::<u64>(1024);
    let t0 = Instant::now();
    let consumer = std::thread::spawn(move || rx.iter().fold(0u64, |a, x| a.wrapping_add(x)));
    for i in 0..n {
        tx.send(i).expect("consumer alive");
    }
    drop(tx);
    consumer.join().expect("consumer thread");
    t0.elapsed().as_secs_f64()
}

/// Peak resident set size of this process (`VmHWM`), 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
