//! Scale out (issue 16, point 5): devices spread over two device servers on
//! different nodes of a three-node NATS cluster. When the node the run's
//! client is connected to goes down, the client moves to another node (it
//! learns them from the cluster) and the run goes on; a request in flight
//! at that moment fails as any lost connection does.
#![cfg(feature = "nats")]

mod process;
mod remote_support;

use std::time::Duration;

use remote_support::*;

struct Cluster {
    nodes: Vec<Nats>,
}

fn cluster(dir: &TempDir) -> Cluster {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let routes: String = ports
        .iter()
        .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let nodes = ports
        .iter()
        .enumerate()
        .map(|(i, (p, c))| {
            Nats::start_with(
                dir,
                *p,
                &format!("n{i}"),
                vec![
                    "-n".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "skyrun".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{c}"),
                    "--routes".into(),
                    routes.clone(),
                ],
            )
        })
        .collect();
    Cluster { nodes }
}

const DEVICES_1: &str = "[[motor]]\nname = 'a1'\nvelocity = 1000.0\n[[detector]]\nname = 'd1'\nmotor = 'a1'\n[[motor]]\nname = 'crawl'\nvelocity = 0.05\n";
const DEVICES_2: &str =
    "[[motor]]\nname = 'a2'\nvelocity = 1000.0\n[[detector]]\nname = 'd2'\nmotor = 'a2'\n";

const PLAN: &str = r#"
devices = "devices.toml"
[[steps]]
stub = "mv"
motors = ["a1", "a2"]
positions = [1.0, -1.0]
[[steps]]
stub = "open_run"
[[steps]]
stub = "sleep"
seconds = 4.0
[[steps]]
stub = "mv"
motors = ["a1", "a2"]
positions = [2.0, -2.0]
[[steps]]
stub = "trigger_and_read"
detectors = ["d1", "d2", "a1", "a2"]
[[steps]]
stub = "close_run"
"#;

/// Waits until a client on node `on` sees the server `name`'s heartbeat (the cluster routes it).
fn wait_routed(url: &str, name: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let subject = format!("skyrun.srv.{name}.alive");
    let url = url.to_owned();
    rt.block_on(async move {
        use futures::StreamExt;
        let nc = async_nats::connect(url).await.unwrap();
        let mut sub = nc.subscribe(subject).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("the cluster routes the server's heartbeat within 20 s");
    });
}

#[test]
fn a_run_goes_on_when_its_nats_node_goes_down() {
    let dir = TempDir::new("remote-cluster");
    let mut c = cluster(&dir);
    let (s1, s2) = (
        dir.write("s1.toml", DEVICES_1),
        dir.write("s2.toml", DEVICES_2),
    );
    let _ioc1 = Serve::start(&s1, &c.nodes[1].url(), "ioc1", &[], &[]);
    let _ioc2 = Serve::start(&s2, &c.nodes[2].url(), "ioc2", &[], &[]);
    wait_routed(&c.nodes[0].url(), "ioc1");
    wait_routed(&c.nodes[0].url(), "ioc2");
    dir.write(
        "devices.toml",
        "[[remote]]\nserver = 'ioc1'\n[[remote]]\nserver = 'ioc2'\n",
    );
    let plan = dir.write("plan.toml", PLAN);
    let docs = dir.path("docs.jsonl");
    // The client knows only node 0; the cluster tells it about the others.
    let run = start_skyrun(
        &[
            "run",
            plan.to_str().unwrap(),
            "--nats",
            &c.nodes[0].url(),
            "-q",
            "--documents",
            docs.to_str().unwrap(),
        ],
        &[],
    );
    wait_for_file_containing(&docs, "\"start\"", Duration::from_secs(20));
    c.nodes[0].kill();
    let out = run.wait(Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
    let docs = documents(&docs);
    let event = &docs.iter().find(|(n, _)| n == "event").expect("an event").1;
    assert_eq!(event["data"]["a1"], 2.0);
    assert_eq!(event["data"]["a2"], -2.0);
    assert_eq!(docs.last().unwrap().1["exit_status"], "success");
}

#[test]
fn a_move_in_flight_when_the_node_goes_down_fails_and_the_next_run_works() {
    let dir = TempDir::new("remote-cluster-move");
    let mut c = cluster(&dir);
    let s1 = dir.write("s1.toml", DEVICES_1);
    let _ioc1 = Serve::start(&s1, &c.nodes[1].url(), "ioc1", &[], &[]);
    wait_routed(&c.nodes[0].url(), "ioc1");
    dir.write("devices.toml", "[[remote]]\nserver = 'ioc1'\n");
    let plan = dir.write(
        "move.toml",
        "devices = 'devices.toml'\n[[steps]]\nstub = 'open_run'\n[[steps]]\nstub = 'mv'\nmotors = ['crawl']\npositions = [5.0]\n[[steps]]\nstub = 'close_run'\n",
    );
    let docs = dir.path("docs.jsonl");
    let urls = format!("{},{}", c.nodes[0].url(), c.nodes[2].url());
    let run = start_skyrun(
        &[
            "run",
            plan.to_str().unwrap(),
            "--nats",
            &c.nodes[0].url(),
            "-q",
            "--documents",
            docs.to_str().unwrap(),
        ],
        &[],
    );
    wait_for_file_containing(&docs, "\"start\"", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    c.nodes[0].kill();
    let out = run.wait(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the connection to NATS was lost while device 'crawl' (device server 'ioc1') was in set"),
        "{}",
        text(&out)
    );
    let docs = documents(&docs);
    assert_eq!(docs.last().unwrap().1["exit_status"], "fail");
    // The next run, through the nodes still up, works.
    let plan = dir.write(
        "scan.toml",
        "devices = 'devices.toml'\n[plan]\nname = 'scan'\ndetectors = ['d1']\nmotor = 'a1'\nstart = 0.0\nstop = 1.0\nnum = 2\n",
    );
    let out = run_skyrun(&["run", plan.to_str().unwrap(), "--nats", &urls, "-q"], &[]);
    assert!(out.status.success(), "{}", text(&out));
}
