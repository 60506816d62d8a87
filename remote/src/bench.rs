//! The limit of the remote path, for `skyrun bench --scenario remote`: bare
//! async-nats request/reply (an echo responder in another process) at a
//! given concurrency, with nothing of skyrun on either side.

use std::time::{Duration, Instant};

use async_nats::Client;
use futures::StreamExt;

use crate::client::connect_nats;
use crate::error::RemoteError;
use crate::wire;

/// The subject an echo responder called `name` answers on.
pub fn echo_subject(name: &str) -> String {
    format!("{}.srv.{name}.echo", wire::SUBJECT_ROOT)
}

/// Answers every request on [`echo_subject`] with its own payload, until the connection closes.
pub async fn serve_echo(nats: Client, name: &str) -> Result<(), RemoteError> {
    let mut sub = nats
        .subscribe(echo_subject(name))
        .await
        .map_err(|e| RemoteError::nats("subscribe", e))?;
    nats.flush()
        .await
        .map_err(|e| RemoteError::nats("flush", e))?;
    while let Some(m) = sub.next().await {
        if let Some(r) = m.reply {
            let _ = nats.publish(r, m.payload).await;
        }
    }
    Ok(())
}

/// Seconds for `rounds` rounds of `concurrency` concurrent request/replies
/// to echo responder `name`, with a payload of `payload` bytes. Runs on a
/// runtime of its own (call it outside any async runtime); every request
/// has a 10 s timeout.
pub fn bare_request_reply(
    url: &str,
    name: &str,
    concurrency: usize,
    rounds: usize,
    payload: usize,
) -> Result<f64, RemoteError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RemoteError::Runtime(e.to_string()))?;
    let (url, subject) = (url.to_owned(), echo_subject(name));
    let work = async move {
        let nc = connect_nats(&url, "skyrun bench", Duration::from_secs(5)).await?;
        let body = bytes::Bytes::from(vec![b'x'; payload]);
        // Warm up.
        for _ in 0..10 {
            let _ = nc.request(subject.clone(), body.clone()).await;
        }
        let t0 = Instant::now();
        for _ in 0..rounds {
            let reqs = (0..concurrency).map(|_| {
                let (nc, s, b) = (nc.clone(), subject.clone(), body.clone());
                async move { tokio::time::timeout(Duration::from_secs(10), nc.request(s, b)).await }
            });
            for r in futures::future::join_all(reqs).await {
                match r {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(RemoteError::nats("request", e)),
                    Err(_) => return Err(RemoteError::nats("request", "timed out after 10 s")),
                }
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    rt.block_on(async move { tokio::time::timeout(Duration::from_secs(600), work).await })
        .unwrap_or_else(|_| Err(RemoteError::nats("bench", "took more than 600 s")))
}
