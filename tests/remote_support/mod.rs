//! Real components for the remote-device tests: a `nats-server` process on
//! a free loopback port (JetStream on, its own store), `skyrun serve`
//! processes, and `skyrun run` with a bounded wait. Nothing is mocked and
//! every wait is bounded; a missing `nats-server` fails the test with a
//! message saying how to install it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `skyrun` binary under test.
pub fn skyrun() -> &'static str {
    env!("CARGO_BIN_EXE_skyrun")
}

/// The nats-server binary: `$NATS_SERVER`, else `nats-server` on PATH, else /usr/sbin/nats-server.
pub fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
    {
        let p = dir.join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "nats-server not found (looked at $NATS_SERVER, PATH and /usr/sbin): install it with \
         `apt-get install -y nats-server` (what .ci/run does) or point NATS_SERVER at the binary"
    );
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

#[path = "../temp_dir/mod.rs"]
mod temp_dir;
pub use temp_dir::TempDir;

fn wait_port(port: u16, up: bool, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let open = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if open == up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: port {port} not {} within {within:?}",
            if up { "open" } else { "closed" }
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
        let mut cmd = Command::new(skyrun());
        cmd.arg("serve")
            .arg(devices)
            .args(["--nats", url, "--name", name])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        for (k, v) in env {
            cmd.env(k, v);
        }
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
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
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

/// A `skyrun` command that was started and not yet waited for.
pub struct Running {
    child: Child,
    what: String,
}

impl Running {
    /// Waits (at most `limit`) for it to finish; kills it and fails the test past that.
    pub fn wait(self, limit: Duration) -> Output {
        let Running { mut child, what } = self;
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{what} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `skyrun ARGS` (environment without OTLP settings, plus `env`).
pub fn start_skyrun(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(skyrun());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running {
        child: cmd.spawn().expect("start skyrun"),
        what: format!("skyrun {}", args.join(" ")),
    }
}

/// Runs `skyrun ARGS` to the end (at most 60 s).
pub fn run_skyrun(args: &[&str], env: &[(&str, &str)]) -> Output {
    start_skyrun(args, env).wait(Duration::from_secs(60))
}

/// stdout and stderr of `out`, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
