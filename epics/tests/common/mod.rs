//! Real IOCs for the tests, started on loopback from PyPI packages
//! (pythonSoftIOC for records, caproto for the motor record), each on a
//! free port of its own; and a CA client that searches only them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use skyrun_epics::CaClient;

/// The `epics/` directory of the workspace (this file is also included by
/// the workspace root's CLI tests, whose manifest directory is the root).
pub fn epics_dir() -> std::path::PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("tests/iocs").is_dir() {
        here.to_path_buf()
    } else {
        here.join("epics")
    }
}

/// The Python with softioc and caproto: `$SKYRUN_EPICS_PYTHON`, else the
/// venv scripts/test makes (`.ci/epics-venv`).
pub fn python() -> String {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let py = std::env::var("SKYRUN_EPICS_PYTHON").unwrap_or_else(|_| {
            epics_dir()
                .join("../.ci/epics-venv/bin/python")
                .display()
                .to_string()
        });
        let probe = Command::new(&py)
            .args(["-c", "import softioc, caproto"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {py}: {e} (scripts/test makes .ci/epics-venv, or set SKYRUN_EPICS_PYTHON)")
            });
        assert!(
            probe.status.success(),
            "{py} cannot import softioc and caproto (pip install softioc==4.7.2 caproto==1.3.0, \
             as scripts/test does, or set SKYRUN_EPICS_PYTHON): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        py
    })
    .clone()
}

/// A port free for both TCP and UDP on 127.0.0.1.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// This test process's CA repeater port, and an environment that keeps the
/// client on loopback: set once, before any client starts.
pub fn repeater_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let port = free_port();
        std::env::set_var("EPICS_CA_AUTO_ADDR_LIST", "NO");
        std::env::set_var("EPICS_CA_ADDR_LIST", "");
        std::env::set_var("EPICS_CA_REPEATER_PORT", port.to_string());
        port
    })
}

/// A running IOC process.
pub struct Ioc {
    child: Option<Child>,
    script: &'static str,
    args: Vec<String>,
    /// Its CA server port on 127.0.0.1.
    pub port: u16,
    /// Its record prefix (unique per IOC).
    pub prefix: String,
    /// Its PVAccess server port on 127.0.0.1, when it serves PVA too.
    pub pva_port: Option<u16>,
}

impl Ioc {
    /// A pythonSoftIOC with `n` ao records, SLOW, TICK and NAME.
    pub fn signals(n: usize) -> Ioc {
        Ioc::start("signals_ioc.py", vec![n.to_string()])
    }

    /// As [`Ioc::signals`], serving the records over PVAccess too (pvxs).
    pub fn signals_pva(n: usize) -> Ioc {
        let mut ioc = Ioc::new("signals_ioc.py", vec![n.to_string(), "--pva".into()]);
        ioc.pva_port = Some(free_port());
        ioc.restart();
        ioc
    }

    /// A caproto motor-record IOC with `n` motors (`PREFIX:MTR1` ...).
    pub fn motors(n: usize, extra: &[&str]) -> Ioc {
        let mut args = vec![n.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Ioc::start("motor_ioc.py", args)
    }

    fn start(script: &'static str, args: Vec<String>) -> Ioc {
        let mut ioc = Ioc::new(script, args);
        ioc.restart();
        ioc
    }

    fn new(script: &'static str, args: Vec<String>) -> Ioc {
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "SKY{}T{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Ioc {
            child: None,
            script,
            args,
            port: free_port(),
            prefix,
            pva_port: None,
        }
    }

    /// Starts the IOC (again) on its port; returns once it serves.
    pub fn restart(&mut self) {
        let repeater = repeater_port().to_string();
        let script = epics_dir().join("tests/iocs").join(self.script);
        let mut cmd = Command::new(python());
        if let Some(p) = self.pva_port {
            cmd.env("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")
                .env("EPICS_PVAS_SERVER_PORT", p.to_string())
                .env("EPICS_PVAS_BROADCAST_PORT", free_port().to_string())
                .env("EPICS_PVA_AUTO_ADDR_LIST", "NO")
                .env("EPICS_PVA_ADDR_LIST", "127.0.0.1");
        }
        let mut child = cmd
            .arg(script)
            .arg(&self.prefix)
            .args(&self.args)
            .env("EPICS_CA_SERVER_PORT", self.port.to_string())
            .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
            .env("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CAS_BEACON_PORT", &repeater)
            .env("EPICS_CA_REPEATER_PORT", &repeater)
            .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
            .env("EPICS_CA_ADDR_LIST", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.script));
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.trim() == "READY" {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not say READY within 60 s", self.script);
        }
        self.child = Some(child);
    }

    /// Kills the IOC (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its CA server address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `PREFIX:name`.
    pub fn pv(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}

impl Drop for Ioc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA client searching only `iocs`.
pub fn client(iocs: &[&Ioc]) -> Arc<CaClient> {
    repeater_port();
    CaClient::with_addresses(iocs.iter().map(|i| i.addr()).collect()).expect("the CA client starts")
}

/// Awaits `fut` for at most `secs`, failing the test with `what` after.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}

/// Waits (at most `secs`) until the PV watched by `watch` holds `value`.
pub async fn until_value(
    watch: &mut tokio::sync::watch::Receiver<skyrun_epics::PvState>,
    value: serde_json::Value,
    secs: u64,
) {
    within(secs, &format!("the value {value}"), async {
        while watch.borrow().latest.as_ref().map(|u| &u.value) != Some(&value) {
            watch.changed().await.expect("the PV lives");
        }
    })
    .await
}
