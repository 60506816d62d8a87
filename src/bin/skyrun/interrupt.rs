//! Ctrl-C while a plan runs, as Bluesky handles it: the first asks the engine
//! to pause at the next checkpoint and, once paused, asks on the terminal
//! whether to resume, abort or stop (end of input means abort); a second
//! Ctrl-C aborts at once. Either way the plan ends through the engine, so
//! the stop document and the run span are always written, and the trace
//! pipeline is flushed afterwards by the caller.

use std::io::{BufRead, Write};
use std::time::Duration;

use skyrun::{EngineState, RunEngine};

/// What the operator chose at the pause prompt.
enum Choice {
    Resume,
    Abort,
    Stop,
}

fn ask() -> Choice {
    let mut err = std::io::stderr();
    loop {
        let _ = write!(err, "skyrun: paused. resume, abort or stop? [r/a/s] ");
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => return Choice::Abort,
            Ok(_) => match line.trim().to_ascii_lowercase().as_str() {
                "r" | "resume" => return Choice::Resume,
                "a" | "abort" => return Choice::Abort,
                "s" | "stop" => return Choice::Stop,
                _ => continue,
            },
        }
    }
}

/// Watches for Ctrl-C while `re` runs a plan; runs until the task is dropped.
pub async fn watch(re: RunEngine) {
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return; // No signal handling available: nothing to watch.
        }
        if re.state() == EngineState::Idle {
            continue;
        }
        eprintln!("\nskyrun: Ctrl-C: pausing at the next checkpoint (Ctrl-C again to abort)");
        let _ = re.pause(true).await;
        // Wait for the pause, or a second Ctrl-C.
        let paused = async {
            while re.state() == EngineState::Running {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\nskyrun: second Ctrl-C: aborting");
                let _ = re.abort("interrupted: Ctrl-C twice").await;
                continue;
            }
            _ = paused => {}
        }
        if re.state() != EngineState::Paused {
            continue; // The plan ended before reaching a checkpoint.
        }
        // A detached thread reads the answer, so a process that ends
        // meanwhile never waits on the terminal.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(ask());
        });
        let choice = tokio::select! {
            c = rx => c.unwrap_or(Choice::Abort),
            _ = tokio::signal::ctrl_c() => Choice::Abort,
        };
        let _ = match choice {
            Choice::Resume => re.resume().await,
            Choice::Abort => {
                re.abort("interrupted: aborted at the operator's request")
                    .await
            }
            Choice::Stop => re.stop().await,
        };
    }
}
