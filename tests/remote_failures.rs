//! Failures of remote devices are explicit (issue 16, point 3): a device
//! server killed mid-move, a request nobody answers, the NATS server
//! restarting (with and without anything in flight), two servers with the
//! same device or the same name, an operation a device does not support.
//! Each run fails with a reason naming the device and the server, writes
//! its stop document, and the next run works; nothing waits past the
//! request timeout.
#![cfg(feature = "nats")]

mod process;
mod remote_support;

use std::time::Duration;

use remote_support::*;

const SERVER_DEVICES: &str = r#"
[[motor]]
name = "rm"
velocity = 1000.0
limits = [-5.0, 5.0]
[[motor]]
name = "crawl"
velocity = 0.05
[[detector]]
name = "rdet"
motor = "rm"
"#;

struct Setup {
    dir: TempDir,
    nats: Nats,
}

fn setup(tag: &str) -> Setup {
    let dir = TempDir::new(tag);
    let nats = Nats::start(&dir);
    dir.write("server.toml", SERVER_DEVICES);
    dir.write(
        "devices.toml",
        "[[motor]]\nname = 'local'\n[[remote]]\nserver = 'ioc1'\n",
    );
    Setup { dir, nats }
}

impl Setup {
    fn serve(&self, name: &str) -> Serve {
        Serve::start(
            &self.dir.path("server.toml"),
            &self.nats.url(),
            name,
            &[],
            &[],
        )
    }
    fn plan(&self, file: &str, steps: &str) -> String {
        let p = self
            .dir
            .write(file, &format!("devices = \"devices.toml\"\n{steps}"));
        p.to_str().unwrap().to_owned()
    }
    fn start(&self, plan: &str, docs: &str, extra: &[&str]) -> Running {
        let url = self.nats.url();
        let docs = self.dir.path(docs);
        let mut args = vec![
            "run",
            plan,
            "--nats",
            &url,
            "-q",
            "--documents",
            docs.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        start_skyrun(&args, &[])
    }
    fn docs(&self, name: &str) -> Vec<(String, serde_json::Value)> {
        documents(&self.dir.path(name))
    }
}

const MOVE_CRAWL: &str = r#"
[[steps]]
stub = "open_run"
[[steps]]
stub = "mv"
motors = ["crawl"]
positions = [5.0]
[[steps]]
stub = "close_run"
"#;

const SCAN: &str = r#"
[plan]
name = "scan"
detectors = ["rdet"]
motor = "rm"
start = -1.0
stop = 1.0
num = 3
"#;

fn assert_failed_run(docs: &[(String, serde_json::Value)], reason_has: &[&str]) {
    let stop = &docs.last().expect("documents").1;
    assert_eq!(docs.last().unwrap().0, "stop", "{docs:?}");
    assert_eq!(stop["exit_status"], "fail", "{stop}");
    let reason = stop["reason"].as_str().unwrap();
    for r in reason_has {
        assert!(reason.contains(r), "reason {reason:?} lacks {r:?}");
    }
}

#[test]
fn a_device_server_killed_mid_move_fails_the_run_naming_device_and_server() {
    let s = setup("remote-kill");
    let mut server = s.serve("ioc1");
    let plan = s.plan("move.toml", MOVE_CRAWL);
    let run = s.start(&plan, "docs.jsonl", &[]);
    // The run has started (its start document is written) and the 100 s move is under way.
    wait_for_file_containing(
        &s.dir.path("docs.jsonl"),
        "\"start\"",
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(200));
    server.kill();
    let out = run.wait(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("device server 'ioc1' stopped answering"),
        "{all}"
    );
    assert!(all.contains("device 'crawl'"), "{all}");
    assert_failed_run(&s.docs("docs.jsonl"), &["ioc1", "crawl"]);

    // The next run, with the server back, works.
    let _server = s.serve("ioc1");
    let plan = s.plan("scan.toml", SCAN);
    let out = s
        .start(&plan, "docs2.jsonl", &[])
        .wait(Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        s.docs("docs2.jsonl").last().unwrap().1["exit_status"],
        "success"
    );
}

#[test]
fn a_request_without_an_answer_fails_after_the_request_timeout() {
    let s = setup("remote-silent");
    let url = s.nats.url();
    // A responder that answers discovery and heartbeats like a server, and never answers a request.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move {
        use futures::StreamExt;
        let nc = async_nats::connect(url).await.unwrap();
        let mut disc = nc.subscribe("skyrun.srv.ioc1.discover").await.unwrap();
        let _reqs = nc.subscribe("skyrun.srv.ioc1.req").await.unwrap();
        let hb = nc.clone();
        tokio::spawn(async move {
            loop {
                let _ = hb
                    .publish(
                        "skyrun.srv.ioc1.alive",
                        r#"{"server":"ioc1","instance":"x"}"#.into(),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let info = serde_json::json!({"server": "ioc1", "instance": "x", "total": 1, "devices": [{
            "name": "rm", "type_name": "SynAxis", "repr": "SynAxis(name='rm')", "kind": "motor",
            "caps": {"readable": true, "movable": true, "triggerable": false, "flyable": false,
                     "stageable": true, "configurable": true, "stoppable": true}}]});
        while let Some(m) = disc.next().await {
            if let Some(r) = m.reply {
                nc.publish(r, serde_json::to_vec(&info).unwrap().into())
                    .await
                    .unwrap();
            }
        }
    });
    s.dir.write("devices.toml", "[[remote]]\nserver = 'ioc1'\n");
    let plan = s.plan(
        "mv.toml",
        "[[steps]]\nstub = 'open_run'\n[[steps]]\nstub = 'mv'\nmotors = ['rm']\npositions = [1.0]\n[[steps]]\nstub = 'close_run'\n",
    );
    let out = s
        .start(&plan, "docs.jsonl", &["--remote-timeout", "1"])
        .wait(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("device 'rm' on device server 'ioc1' did not answer set within 1 s"),
        "{}",
        text(&out)
    );
    assert_failed_run(&s.docs("docs.jsonl"), &["'rm'", "'ioc1'"]);
    drop(rt);
}

#[test]
fn a_nats_restart_with_nothing_in_flight_goes_unnoticed() {
    let mut s = setup("remote-restart");
    let _server = s.serve("ioc1");
    let plan = s.plan(
        "steps.toml",
        r#"
[[steps]]
stub = "mv"
motors = ["rm"]
positions = [1.0]
[[steps]]
stub = "open_run"
[[steps]]
stub = "sleep"
seconds = 4.0
[[steps]]
stub = "mv"
motors = ["rm"]
positions = [2.0]
[[steps]]
stub = "trigger_and_read"
detectors = ["rdet", "rm"]
[[steps]]
stub = "close_run"
"#,
    );
    let run = s.start(&plan, "docs.jsonl", &[]);
    wait_for_file_containing(
        &s.dir.path("docs.jsonl"),
        "\"start\"",
        Duration::from_secs(20),
    );
    s.nats.restart();
    let out = run.wait(Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
    let docs = s.docs("docs.jsonl");
    let event = &docs.iter().find(|(n, _)| n == "event").expect("an event").1;
    assert_eq!(event["data"]["rm"], 2.0);
    assert_eq!(docs.last().unwrap().1["exit_status"], "success");
}

#[test]
fn a_nats_restart_during_a_move_fails_the_run_and_the_next_run_works() {
    let mut s = setup("remote-restart-move");
    let _server = s.serve("ioc1");
    let plan = s.plan("move.toml", MOVE_CRAWL);
    let run = s.start(&plan, "docs.jsonl", &[]);
    wait_for_file_containing(
        &s.dir.path("docs.jsonl"),
        "\"start\"",
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(200));
    s.nats.restart();
    let out = run.wait(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("the connection to NATS was lost while device 'crawl' (device server 'ioc1') was in set"), "{}", text(&out));
    assert_failed_run(&s.docs("docs.jsonl"), &["crawl", "ioc1"]);
    // The server reconnected by itself: the next run works.
    let plan = s.plan("scan.toml", SCAN);
    let out = s
        .start(&plan, "docs2.jsonl", &[])
        .wait(Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn two_servers_offering_one_device_name_are_refused() {
    let s = setup("remote-dup");
    let _a = s.serve("ioc1");
    let _b = s.serve("ioc2");
    s.dir.write(
        "devices.toml",
        "[[remote]]\nserver = 'ioc1'\n[[remote]]\nserver = 'ioc2'\n",
    );
    let plan = s.plan("scan.toml", SCAN);
    let out = s
        .start(&plan, "docs.jsonl", &[])
        .wait(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("device 'rm' is offered by two device servers, 'ioc1' and 'ioc2'"),
        "{}",
        text(&out)
    );
    // Picking devices resolves it.
    s.dir.write(
        "devices.toml",
        "[[remote]]\nserver = 'ioc1'\ndevices = ['rm', 'rdet']\n[[remote]]\nserver = 'ioc2'\ndevices = ['crawl']\n",
    );
    let out = s
        .start(&plan, "docs.jsonl", &[])
        .wait(Duration::from_secs(30));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_second_server_of_the_same_name_refuses_to_start() {
    let s = setup("remote-name");
    let _a = s.serve("ioc1");
    let out = run_skyrun(
        &[
            "serve",
            s.dir.path("server.toml").to_str().unwrap(),
            "--nats",
            &s.nats.url(),
            "--name",
            "ioc1",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a device server named 'ioc1' is already running"),
        "{}",
        text(&out)
    );
}

#[test]
fn unsupported_operations_and_engine_reuse_through_the_library() {
    use skyrun_actors::{DeviceOp, DeviceReply};
    let s = setup("remote-lib");
    let _server = s.serve("ioc1");
    let client = skyrun_remote::RemoteClient::connect(&s.nats.url(), Default::default()).unwrap();
    let found = client.discover("ioc1").unwrap();
    let names: Vec<&str> = found.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rm", "crawl", "rdet"]);
    actix::System::new().block_on(async move {
        let get = |n: &str| found.iter().find(|d| d.name == n).unwrap().clone();
        let rm = client.spawn_proxy("ioc1", get("rm"));
        let cx = opentelemetry::Context::new();
        // A motor is triggerable (as in ophyd), but it is no flyer.
        let err = rm.request(DeviceOp::Kickoff, &cx).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "device 'rm' (SynAxis) does not support kickoff"
        );
        // A move outside the limits fails its status with the device's reason and the server.
        let bad = rm
            .request(DeviceOp::Set(serde_json::json!("not a number")), &cx)
            .await
            .unwrap();
        let DeviceReply::Status(st) = bad else {
            panic!("a status")
        };
        let e = st.wait().await.unwrap_err().to_string();
        assert!(e.contains("rm") && e.contains("ioc1"), "{e}");
        // The engine runs a failing plan, then a good one.
        let rdet = client.spawn_proxy("ioc1", get("rdet"));
        let re = skyrun::RunEngine::new();
        let r = re
            .run(skyrun::plans::scan(vec![rdet.clone()], &rm, 0.0, 10.0, 2))
            .await;
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("outside the limits") && e.contains("ioc1"),
            "{e}"
        );
        let r = re
            .run(skyrun::plans::count(vec![rdet, rm.clone()], 2, 0.0))
            .await;
        assert!(r.is_ok(), "{r:?}");
        let DeviceReply::Status(st) = rm.request(DeviceOp::Set(2.0.into()), &cx).await.unwrap()
        else {
            panic!()
        };
        st.wait().await.unwrap();
        let DeviceReply::Readings(r) = rm.request(DeviceOp::Read, &cx).await.unwrap() else {
            panic!()
        };
        assert_eq!(r["rm"].value, serde_json::json!(2.0));
    });
}
