//! Shared by the service tests: a `skyrun service` process on a free
//! loopback port (stopped when dropped), a plain HTTP client and a
//! WebSocket client with bounded waits, and blueapi 1.21.1's CLI pointed at
//! the service.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test beamline: a motor and a detector on it.
pub const DEVICES: &str = "[[motor]]\nname = 'motor'\nvelocity = 1000.0\n\
    [[detector]]\nname = 'det'\nmotor = 'motor'\n[[signal]]\nname = 'sig'\n";

pub use crate::process::TempDir;

/// A running `skyrun service`, its spans written to `spans.jsonl` in `dir`.
pub struct Service {
    child: Child,
    pub url: String,
    pub spans: PathBuf,
}

impl Service {
    /// Starts the service on the test beamline ([`DEVICES`], a file in `dir`) on a free port.
    pub fn start(dir: &TempDir, extra: &[&str]) -> Service {
        Self::start_with(dir, DEVICES, extra, &[])
    }

    /// Starts the service on the device file `devices` (written in `dir`),
    /// with `env` added to its environment.
    pub fn start_with(
        dir: &TempDir,
        devices: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let devices = dir.write("devices.toml", devices);
        let spans = dir.path("spans.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_skyrun"))
            .arg("service")
            .arg("--devices")
            .arg(&devices)
            .arg("--state-dir")
            .arg(dir.path("state"))
            .args(["--bind", "127.0.0.1:0", "--trace"])
            .arg(format!("jsonl:{}", spans.display()))
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start skyrun service");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[service] {line}");
                if let Some(at) = line.find("listening on ") {
                    let _ = tx.send(line[at + "listening on ".len()..].trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("skyrun service did not say where it listens within 60 s");
            }
        };
        Service { child, url, spans }
    }

    /// Stops the service with SIGTERM (so it flushes its spans) and waits, at most 30 s.
    pub fn stop(mut self) -> Vec<Value> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "skyrun service exited with {status}");
                break;
            }
            assert!(
                Instant::now() < end,
                "skyrun service did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(&self.spans)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a span per line"))
            .collect()
    }

    /// Kills the service with SIGKILL (no chance to write anything) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// `METHOD path` with an optional JSON body and headers: the status and the body (JSON, or `null`).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rq = Self::client().request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            rq = rq
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        let resp = rq.send().unwrap_or_else(|e| panic!("{path}: {e}"));
        let code = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, &[])
    }

    /// `PUT /worker/state` with `body` (`{"new_state": ...}`).
    pub fn set_state(&self, body: &str) -> (u16, Value) {
        self.call("PUT", "/worker/state", Some(body), &[])
    }

    /// `POST /tasks` with `body`, which must be accepted: the task's id.
    pub fn submit(&self, body: &str) -> String {
        let (code, r) = self.call("POST", "/tasks", Some(body), &[]);
        assert_eq!(code, 201, "POST /tasks {body}: {r}");
        r["task_id"].as_str().unwrap().to_owned()
    }

    /// Starts pending task `id` (`PUT /worker/task`), with `headers`.
    pub fn begin(&self, id: &str, headers: &[(&str, &str)]) {
        let (code, r) = self.call(
            "PUT",
            "/worker/task",
            Some(&format!(r#"{{"task_id": "{id}"}}"#)),
            headers,
        );
        assert_eq!(code, 200, "PUT /worker/task {id}: {r}");
    }

    /// A WebSocket to `/api/v2/run_plan` that has submitted `task` (a TaskRequest).
    pub fn run_plan(&self, task: &str, headers: &[(&str, &str)]) -> Ws {
        use tungstenite::client::IntoClientRequest as _;
        let url = format!("{}/api/v2/run_plan", self.url.replacen("http", "ws", 1));
        let mut req = url.clone().into_client_request().unwrap();
        for (k, v) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        let (mut socket, _) = tungstenite::connect(req).unwrap_or_else(|e| panic!("{url}: {e}"));
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        }
        let submit = format!(r#"{{"kind": "submit", "task": {task}}}"#);
        socket.send(tungstenite::Message::text(submit)).unwrap();
        Ws { socket }
    }

    /// Polls `GET /tasks/{id}` until it is complete (at most 120 s).
    pub fn wait_complete(&self, id: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            let (code, task) = self.get(&format!("/tasks/{id}"));
            assert_eq!(code, 200, "GET /tasks/{id}: {task}");
            if task["is_complete"] == true {
                return task;
            }
            assert!(
                Instant::now() < end,
                "task {id} not complete within 120 s: {task}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `GET /worker/state` until it is `state` (at most 60 s).
    pub fn wait_state(&self, state: &str) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, s) = self.get("/worker/state");
            if s == state {
                return;
            }
            assert!(
                Instant::now() < end,
                "worker state not {state} within 60 s: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Ours: started by Service::start.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /environment` until `done` says yes (at most 60 s).
pub fn wait_environment(svc: &Service, done: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, env) = svc.get("/environment");
        assert_eq!(code, 200, "{env}");
        if done(&env) {
            return env;
        }
        assert!(
            std::time::Instant::now() < end,
            "environment not reloaded within 60 s: {env}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A WebSocket client of `/api/v2/run_plan`, every read bounded.
pub struct Ws {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
}

impl Ws {
    /// The next message (JSON), `None` once the service has closed the socket;
    /// fails if nothing comes within 120 s.
    pub fn next(&mut self) -> Option<Value> {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).expect("a JSON message"))
                }
                Ok(tungstenite::Message::Close(_)) => return None,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return None
                }
                Err(e) => panic!("reading the WebSocket: {e}"),
            }
            assert!(Instant::now() < end, "no WebSocket message within 120 s");
        }
    }

    /// Reads updates until one's `data` satisfies `want` (which sees every
    /// update's `data` on the way); fails if the socket closes first.
    pub fn until(&mut self, what: &str, mut want: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let Some(msg) = self.next() else {
                panic!("the WebSocket closed before {what}");
            };
            assert_eq!(msg["kind"], "update", "{msg}");
            if want(&msg["data"]) {
                return msg["data"].clone();
            }
        }
    }

    /// Every update's `data` until the service closes the socket.
    pub fn rest(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.next().map(|m| m["data"].clone())).collect()
    }
}

/// blueapi 1.21.1's CLI: `$SKYRUN_BLUEAPI`, else the venv scripts/test makes.
pub fn blueapi_exe() -> PathBuf {
    if let Ok(p) = std::env::var("SKYRUN_BLUEAPI") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/blueapi-venv/bin/blueapi");
    assert!(
        venv.is_file(),
        "blueapi's CLI not found at {}: run scripts/test (it installs blueapi==1.21.1 there) \
         or set SKYRUN_BLUEAPI",
        venv.display()
    );
    venv
}

/// `blueapi -c config.yaml controller ARGS` against `svc`, at most 120 s.
pub fn blueapi(dir: &TempDir, svc: &Service, args: &[&str]) -> Output {
    let config = dir.write("config.yaml", &format!("api:\n  url: {}\n", svc.url));
    let mut child = Command::new(blueapi_exe())
        .arg("-c")
        .arg(&config)
        .arg("controller")
        .args(args)
        .env("XDG_CACHE_HOME", dir.path("cache"))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run blueapi");
    let end = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("blueapi {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// stdout of a blueapi command that must succeed.
pub fn blueapi_ok(dir: &TempDir, svc: &Service, args: &[&str]) -> String {
    let out = blueapi(dir, svc, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "blueapi {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// The status of `GET path` on a service listening on loopback `port`.
pub fn status_on(port: u16, path: &str) -> u16 {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"))
        .status()
        .as_u16()
}
