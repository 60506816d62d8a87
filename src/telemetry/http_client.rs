//! The OTLP/HTTP client: the blocking reqwest client opentelemetry-otlp
//! uses by default, wrapped so that a failed request leaves its whole error
//! chain (connection refused, timed out, `404 Not Found`, ...) with the
//! [`Counters`]. The exporter itself reports every such failure as
//! "HTTP export failed: network error".

use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use super::counting::Counters;

/// A reqwest blocking client that records why a request failed.
#[derive(Debug)]
pub(super) struct DiagnosingClient {
    inner: reqwest::blocking::Client,
    counters: Counters,
}

impl DiagnosingClient {
    /// A client with a `timeout` per request, recording into `counters`.
    pub(super) fn new(timeout: Duration, counters: &Counters) -> Self {
        // reqwest's blocking client starts a runtime of its own, which must
        // not be done on a thread that is inside one (an actix system).
        let inner = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_else(|_| reqwest::blocking::Client::new())
        })
        .join()
        .unwrap_or_else(|_| reqwest::blocking::Client::new());
        DiagnosingClient {
            inner,
            counters: counters.clone(),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for DiagnosingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let result = self.inner.send_bytes(request).await;
        if let Err(e) = &result {
            self.counters.note_transport_error(error_chain(e.as_ref()));
        }
        result
    }
}

/// `e` and its sources, joined by `: `, each said once.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}
