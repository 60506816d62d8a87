//! Real components for the remote-device tests: a `nats-server` process on
//! a free loopback port (JetStream on, its own store), `skyrun serve`
//! processes, and `skyrun run` with a bounded wait. Nothing is mocked and
//! every wait is bounded; a missing `nats-server` fails the test with a
//! message saying how to install it. Built on the real-process helpers
//! of `tests/process/` (re-exported here).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use crate::process::*;

/// The nats-server binary: `$NATS_SERVER`, else `nats-server` on PATH, else /usr/sbin/nats-server.
pub fn nats_server_bin() -> PathBuf {
    program(
        "NATS_SERVER",
        &["nats-server"],
        "install it with `apt-get install -y nats-server` (what .ci/run does) or point NATS_SERVER at the binary",
    )
}

/// Whether nats-server is installed; says the test is skipped when not.
pub fn nats_server_present() -> bool {
    let present = std::env::var_os("NATS_SERVER").is_some()
        || std::path::Path::new("/usr/sbin/nats-server").is_file()
        || std::process::Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok();
    if !present {
        eprintln!(
            "SKIPPED: nats-server is not installed (apt-get install nats-server, or set NATS_SERVER)"
        );
    }
    present
}

/// A running nats-server.
pub struct Nats {
    pub port: u16,
    child: Option<Child>,
    store: PathBuf,
    extra: Vec<String>,
}

impl Nats {
    /// Starts nats-server with JetStream on a free loopback port.
    pub fn start(dir: &TempDir) -> Nats {
        Self::start_with(dir, free_port(), "js", Vec::new())
    }

    /// Starts nats-server on `port` with extra arguments (cluster options).
    pub fn start_with(dir: &TempDir, port: u16, tag: &str, extra: Vec<String>) -> Nats {
        let store = dir.path(&format!("store-{tag}"));
        let mut n = Nats {
            port,
            child: None,
            store,
            extra,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_bin())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nats_server_bin().display()));
        self.child = Some(child);
        wait_port(self.port, true, Duration::from_secs(10), "nats-server");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits until its port is closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_port(self.port, false, Duration::from_secs(10), "nats-server");
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running `skyrun serve`.
pub struct Serve {
    child: Option<Child>,
    pub name: String,
    stderr: mpsc::Receiver<String>,
}

impl Serve {
    /// Starts `skyrun serve devices --nats url --name name [extra...]` and
    /// waits (at most 20 s) until it says it serves.
    pub fn start(
        devices: &Path,
        url: &str,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        let mut args = vec!["serve", devices.to_str().expect("a UTF-8 path")];
        args.extend(["--nats", url, "--name", name]);
        args.extend(extra);
        let mut cmd = skyrun_command(&args, env);
        cmd.stdout(Stdio::null());
        let mut child = cmd.spawn().expect("start skyrun serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(" serves ") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("skyrun serve '{name}' did not start within 20 s; stderr: {seen:?}");
                }
            }
        }
        Serve {
            child: Some(child),
            name: name.to_owned(),
            stderr: rx,
        }
    }

    /// Stops it with SIGTERM (spans flushed) and waits (at most 15 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_signal(c.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!(
                        "skyrun serve '{}' did not stop within 15 s of SIGTERM",
                        self.name
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The lines it wrote on stderr so far (after startup).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `skyrun ARGS` to the end (at most 60 s).
pub fn run_skyrun(args: &[&str], env: &[(&str, &str)]) -> Output {
    start_skyrun(args, env).wait(Duration::from_secs(60))
}

/// The spans of a `--trace jsonl:FILE` file.
pub fn spans(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON span per line"))
        .collect()
}

/// The documents of a `--documents FILE` file, as (name, body).
pub fn documents(path: &Path) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect()
}

pub fn service(span: &serde_json::Value) -> &str {
    span["resource"]["attributes"]["service.name"]
        .as_str()
        .unwrap_or("")
}

pub fn span_id(span: &serde_json::Value) -> &str {
    span["context"]["span_id"].as_str().unwrap()
}

pub fn trace_id(span: &serde_json::Value) -> &str {
    span["context"]["trace_id"].as_str().unwrap()
}

/// A document stored in JetStream: its subject, headers and msgpack body.
pub struct Stored {
    pub subject: String,
    pub headers: std::collections::HashMap<String, String>,
    pub doc: serde_json::Value,
}

impl Stored {
    /// Header `key`, which the message must carry.
    pub fn header(&self, key: &str) -> &str {
        self.headers
            .get(key)
            .unwrap_or_else(|| panic!("{} has no {key} header", self.subject))
    }
}

/// Every message of stream `stream`, read by sequence on a fresh connection
/// (at most 30 s).
pub fn read_stream(url: &str, stream: &str) -> Vec<Stored> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let nc = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(nc);
            let mut s = js.get_stream(stream).await.expect("the stream was created");
            let n = s.info().await.unwrap().state.messages;
            let mut out = Vec::new();
            for seq in 1..=n {
                let m = s.get_raw_message(seq).await.unwrap();
                let headers: std::collections::HashMap<String, String> = m
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.first()?.as_str().to_owned())))
                    .collect();
                let json =
                    headers.get("content-type").map(String::as_str) == Some("application/json");
                let doc = if json {
                    serde_json::from_slice(&m.payload).expect("a JSON event")
                } else {
                    rmp_serde::from_slice(&m.payload).expect("a msgpack document")
                };
                out.push(Stored {
                    subject: m.subject.to_string(),
                    headers,
                    doc,
                });
            }
            out
        })
        .await
        .expect("reading the stream took more than 30 s")
    })
}
