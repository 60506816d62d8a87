//! The engine core's own tests: which commands answer at once, and a
//! registered command replacing one of them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::msg::{Command, Msg};
use crate::reply::Reply;
use crate::{Plan, RunEngine};

fn run<F: std::future::Future>(f: F) -> F::Output {
    actix::System::new().block_on(async {
        match tokio::time::timeout(Duration::from_secs(60), f).await {
            Ok(v) => v,
            Err(_) => panic!("the test did not end within 60 s"),
        }
    })
}

#[test]
fn the_commands_answered_at_once_are_those_whose_handler_cannot_wait() {
    let now: Vec<&str> = Command::ALL
        .iter()
        .filter(|c| c.answers_now())
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        now,
        [
            "open_run",
            "create",
            "drop",
            "checkpoint",
            "clear_checkpoint",
            "pause",
            "rewindable",
            "null"
        ]
    );
    assert!(!Command::Other("null2".into()).answers_now());
}

#[test]
fn a_registered_command_replaces_one_answered_at_once() {
    run(async {
        let re = RunEngine::new();
        re.register_command("null", |_msg, _cx| async { Ok(Reply::Value(7.into())) });
        let got = Arc::new(AtomicI64::new(0));
        let g = got.clone();
        let plan = Plan::new("null", move |ctx| async move {
            let reply = ctx.send(Msg::null()).await?;
            let Reply::Value(v) = reply else {
                panic!("the registered handler's reply, got {reply:?}");
            };
            g.store(v.as_i64().unwrap_or(-1), Ordering::SeqCst);
            Ok(())
        });
        re.run(plan).await.unwrap();
        assert_eq!(got.load(Ordering::SeqCst), 7);
        // The table's `null` answers again once the replacement is removed.
        assert!(re.unregister_command("null"));
        let plan = Plan::new("null", |ctx| async move {
            let reply = ctx.send(Msg::null()).await?;
            reply.none(&Command::Null)
        });
        re.run(plan).await.unwrap();
    });
}
