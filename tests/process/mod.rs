//! Real processes for the integration tests: the `skyrun` binary under test
//! (run to the end or started and waited for), other programs (nats-server,
//! Chromium, ...) found where they are installed, loopback ports, fresh
//! directories, files waited for, signals. Every wait is bounded and fails
//! the test saying what did not happen; a child that outlives its limit is
//! killed. The tests that start real processes (`tests/cli*.rs`,
//! `tests/remote_*.rs`, the timeline and Chrome trace tests, ...) start
//! from here: `mod process;` and `use process::*;`.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a `skyrun` command may take before the test fails.
pub const SKYRUN_LIMIT: Duration = Duration::from_secs(120);

/// The environment a test's `skyrun` never inherits: where to export spans
/// and the trace context to join (a test sets what it needs explicitly).
const TRACING_ENV: &[&str] = &[
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "TRACEPARENT",
    "UBER_TRACE_ID",
];

/// The `skyrun` binary under test.
pub fn skyrun_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skyrun")
}

/// `skyrun ARGS` with `env` (and none of the tracing environment of the
/// test's own process), stdin closed, stdout and stderr captured.
pub fn skyrun_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(skyrun_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in TRACING_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `skyrun ARGS` to the end (at most [`SKYRUN_LIMIT`]).
pub fn skyrun(args: &[&str]) -> Output {
    skyrun_env(args, &[])
}

/// Runs `skyrun ARGS` with extra environment `env` to the end (at most [`SKYRUN_LIMIT`]).
pub fn skyrun_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    start_skyrun(args, env).wait(SKYRUN_LIMIT)
}

/// Starts `skyrun ARGS` with extra environment `env`.
pub fn start_skyrun(args: &[&str], env: &[(&str, &str)]) -> Running {
    Running::spawn(
        skyrun_command(args, env),
        &format!("skyrun {}", args.join(" ")),
    )
}

/// A process that was started and not yet waited for.
pub struct Running {
    child: Option<Child>,
    what: String,
}

impl Running {
    /// Starts `cmd` (named `what` in failures).
    pub fn spawn(mut cmd: Command, what: &str) -> Running {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Running {
            child: Some(child),
            what: what.to_owned(),
        }
    }

    /// The child process.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("not yet waited for")
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("not yet waited for").id()
    }

    /// Sends it `signal` (`INT`, `TERM`, `KILL`, ...).
    pub fn signal(&self, signal: &str) {
        send_signal(self.id(), signal);
    }

    /// Whether it has ended.
    pub fn has_ended(&mut self) -> bool {
        self.child().try_wait().expect("its status").is_some()
    }

    /// Waits (at most `limit`) for it to end, reading its output as it
    /// comes (so a large output never blocks it); kills it and fails the
    /// test past the limit, with what it wrote.
    pub fn wait(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("not yet waited for");
        let stdout = child.stdout.take().map(read_on_a_thread);
        let stderr = child.stderr.take().map(read_on_a_thread);
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("its status") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let collect = |t: Option<std::thread::JoinHandle<Vec<u8>>>| {
            t.map(|t| t.join().expect("the reader thread"))
                .unwrap_or_default()
        };
        let (stdout, stderr) = (collect(stdout), collect(stderr));
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "{} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                self.what,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read_on_a_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    })
}

/// Sends `signal` to process `pid` (the shell's builtin kill: no procps needed).
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{signal} {pid} failed");
}

/// A program the tests need: `$env_var` if set, else the first of `names`
/// on PATH or in /usr/sbin, /usr/bin; fails the test with `install` (how to
/// get it) when there is none.
pub fn program(env_var: &str, names: &[&str], install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .collect();
    for name in names {
        for dir in &dirs {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{} not found (looked at ${env_var}, PATH, /usr/sbin and /usr/bin): {install}",
        names.join(" or ")
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

/// Waits (at most `within`) until loopback `port` accepts connections
/// (`up`) or refuses them; `what` is named in the failure.
pub fn wait_port(port: u16, up: bool, within: Duration, what: &str) {
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

/// Waits (at most `within`) until the text of the file at `path` satisfies
/// `ready`; returns that text, or fails the test naming the file and `what`.
pub fn wait_for_file(
    path: &Path,
    within: Duration,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if ready(&text) {
                return text;
            }
        }
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            panic!(
                "{} did not show {what} within {within:?}; it has:\n{text}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (at most `within`) until the file at `path` contains `needle`.
pub fn wait_for_file_containing(path: &Path, needle: &str, within: Duration) -> String {
    wait_for_file(path, within, &format!("'{needle}'"), |t| t.contains(needle))
}

/// A fresh directory for one test, kept after it (to look at what it
/// wrote): `$CARGO_TARGET_TMPDIR/<test file>-<pid>/<name>`.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}-{}", crate_name(), std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test directory");
    dir
}

/// The test file's name (`cli`, `remote_devices`, ...).
fn crate_name() -> &'static str {
    module_path!().split("::").next().unwrap_or("test")
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir(test_dir(&format!("{tag}-{}", unique())))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A number no other call in this process returns.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The exit status, stdout and stderr of `out`, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `out` ended with exit code `code`, cleanly: an error message, no panic
/// and no backtrace.
pub fn assert_clean_failure(out: &Output, code: i32) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}
