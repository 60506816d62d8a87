//! `skyrun service --token-file` with a plain HTTP client: 401 with
//! `WWW-Authenticate: Bearer` without a token or with a wrong one, the
//! answer with a right one, the WebSocket handshake refused without it,
//! blueapi's open routes open; bad token files refused naming the file; a
//! non-loopback address refused without tokens, or served with a loud
//! warning when told `--allow-unauthenticated`; blueapi's CLI, which cannot
//! send a static token, denied.

mod process;
mod service_support;

use std::path::Path;
use std::time::Duration;

use process::{assert_clean_failure, free_port, skyrun, start_skyrun, text, wait_port};
use serde_json::json;
use service_support::{Service, TempDir, DEVICES};

const TOKENS: &str = "first-token-0123456789\n\n  second-token-abcdef  \n";

/// Writes `text` to `name` in `dir` with permission bits `mode`.
fn write_mode(dir: &TempDir, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.write(name, text);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// The status of a WebSocket handshake on `/api/v2/run_plan` with `headers`
/// (101 when it is accepted).
fn handshake(svc: &Service, headers: &[(&str, &str)]) -> u16 {
    use tungstenite::client::IntoClientRequest as _;
    let url = format!("{}/api/v2/run_plan", svc.url.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    let stream = std::net::TcpStream::connect(req.uri().authority().unwrap().as_str()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    match tungstenite::client(req, stream) {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tungstenite::handshake::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            r.status().as_u16()
        }
        Err(e) => panic!("WebSocket handshake: {e}"),
    }
}

/// `GET path` with `headers`: the status, the `WWW-Authenticate` header and the body.
fn get(svc: &Service, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let mut rq = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(format!("{}{path}", svc.url));
    for (k, v) in headers {
        rq = rq.header(*k, *v);
    }
    let resp = rq.send().unwrap_or_else(|e| panic!("{path}: {e}"));
    let code = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (code, challenge, resp.text().unwrap_or_default())
}

#[test]
fn every_route_but_the_open_ones_requires_a_token() {
    let dir = TempDir::new("svc-auth");
    let file = write_mode(&dir, "tokens", TOKENS, 0o600);
    let svc = Service::start(&dir, &["--token-file", file.to_str().unwrap()]);
    let right = [("authorization", "Bearer first-token-0123456789")];
    let second = [("authorization", "bearer second-token-abcdef")];
    let wrong = [("authorization", "Bearer first-token-012345678")];
    let basic = [("authorization", "Basic Zmlyc3QtdG9rZW4=")];

    for path in [
        "/worker/state",
        "/plans",
        "/devices/motor",
        "/tasks",
        "/api/v1/worker/task",
        "/environment",
        "/no-such-route",
    ] {
        let (code, challenge, body) = get(&svc, path, &[]);
        assert_eq!(code, 401, "{path} without a token: {body}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{path}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            json!({"detail": "Not authenticated"})
        );
        for h in [&wrong, &basic] {
            let (code, challenge, body) = get(&svc, path, h);
            assert_eq!(code, 401, "{path} with {h:?}: {body}");
            assert!(challenge.unwrap().starts_with("Bearer"), "{path}");
        }
    }
    assert_eq!(get(&svc, "/worker/state", &right).0, 200);
    assert_eq!(get(&svc, "/worker/state", &right).2, "\"IDLE\"");
    assert_eq!(get(&svc, "/plans", &second).0, 200);
    assert_eq!(get(&svc, "/no-such-route", &right).0, 404);

    // What blueapi's client asks before it has a token stays open.
    assert_eq!(get(&svc, "/healthz", &[]).0, 200);
    assert_eq!(get(&svc, "/config/oidc", &[]).0, 204);

    // Nothing is created or changed without a token.
    let task = r#"{"name": "count", "params": {"detectors": ["det"], "num": 1}, "instrument_session": "s"}"#;
    assert_eq!(svc.call("POST", "/tasks", Some(task), &[]).0, 401);
    assert_eq!(
        svc.call(
            "PUT",
            "/worker/state",
            Some(r#"{"new_state": "PAUSED"}"#),
            &wrong
        )
        .0,
        401
    );
    assert_eq!(
        svc.call("GET", "/tasks", None, &right).1,
        json!({"tasks": []})
    );

    // The WebSocket handshake is refused before the upgrade without a right token.
    assert_eq!(handshake(&svc, &[]), 401);
    assert_eq!(handshake(&svc, &wrong), 401);
    assert_eq!(handshake(&svc, &right), 101);

    // With the token, a task runs to success.
    let id = {
        let (code, r) = svc.call("POST", "/tasks", Some(task), &right);
        assert_eq!(code, 201, "{r}");
        r["task_id"].as_str().unwrap().to_owned()
    };
    let start = format!(r#"{{"task_id": "{id}"}}"#);
    assert_eq!(svc.call("PUT", "/worker/task", Some(&start), &[]).0, 401);
    assert_eq!(svc.call("PUT", "/worker/task", Some(&start), &right).0, 200);
    let end = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (code, t) = svc.call("GET", &format!("/tasks/{id}"), None, &right);
        assert_eq!(code, 200, "{t}");
        if t["is_complete"] == true {
            assert_eq!(t["outcome"]["outcome"], "success", "{t}");
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "task not complete within 120 s: {t}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `skyrun service` with `args` on the test beamline: it must fail with
/// exit code 2 before listening; its stderr.
fn refused(dir: &TempDir, args: &[&str]) -> String {
    let devices = dir.write("devices.toml", DEVICES);
    let mut all = vec![
        "service",
        "--devices",
        devices.to_str().unwrap(),
        "--no-state",
    ];
    all.extend_from_slice(args);
    let out = skyrun(&all);
    assert_clean_failure(&out, 2);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_token_files_are_refused_naming_the_file() {
    let dir = TempDir::new("svc-auth-files");
    let bind = ["--bind", "127.0.0.1:0"];
    let name = |p: &Path| p.to_str().unwrap().to_owned();

    let missing = dir.path("nope");
    let err = refused(
        &dir,
        &[&bind[..], &["--token-file", &name(&missing)]].concat(),
    );
    assert!(
        err.contains(&format!("token file {}: no such file", missing.display())),
        "{err}"
    );

    let empty = write_mode(&dir, "empty", "\n  \n", 0o600);
    let err = refused(
        &dir,
        &[&bind[..], &["--token-file", &name(&empty)]].concat(),
    );
    assert!(
        err.contains(&format!("token file {}: holds no token", empty.display())),
        "{err}"
    );

    let open = write_mode(&dir, "open", TOKENS, 0o644);
    let err = refused(&dir, &[&bind[..], &["--token-file", &name(&open)]].concat());
    assert!(
        err.contains(&format!(
            "token file {}: readable by every user",
            open.display()
        )),
        "{err}"
    );

    // A directory: not world-readable, but not a file that can be read.
    let folder = dir.path("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let err = refused(
        &dir,
        &[&bind[..], &["--token-file", &name(&folder)]].concat(),
    );
    assert!(
        err.contains(&format!("token file {}: cannot be read", folder.display())),
        "{err}"
    );
}

#[test]
fn a_network_address_needs_tokens_or_consent() {
    let dir = TempDir::new("svc-auth-bind");
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let err = refused(&dir, &["--bind", &bind]);
    assert!(
        err.contains(&format!(
            "refusing to listen on {bind} without authentication"
        )) && err.contains("--token-file")
            && err.contains("--allow-unauthenticated"),
        "{err}"
    );

    // Told so, it serves anyone, and says so at start.
    let devices = dir.write("devices.toml", DEVICES);
    let mut svc = start_skyrun(
        &[
            "service",
            "--devices",
            devices.to_str().unwrap(),
            "--no-state",
            "--bind",
            &bind,
            "--allow-unauthenticated",
        ],
        &[],
    );
    wait_port(
        port,
        true,
        Duration::from_secs(60),
        "skyrun service --allow-unauthenticated",
    );
    assert_eq!(service_support::status_on(port, "/worker/state"), 200);
    assert!(!svc.has_ended());
    svc.signal("TERM");
    let out = svc.wait(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "WARNING: listening on {bind} without authentication: anyone on the network"
        )),
        "{}",
        text(&out)
    );
}

/// blueapi 1.21.1's CLI sends only an OIDC access token from its login
/// cache (a JWT it checks against the server's JWKS), never a static one:
/// against a token-guarded service it is denied, and says so.
#[test]
fn blueapis_cli_cannot_send_a_static_token() {
    let dir = TempDir::new("svc-auth-blueapi");
    let file = write_mode(&dir, "tokens", TOKENS, 0o600);
    let svc = Service::start(&dir, &["--token-file", file.to_str().unwrap()]);
    let out = service_support::blueapi(&dir, &svc, &["state"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Access denied"),
        "{}",
        text(&out)
    );
}
