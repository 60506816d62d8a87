//! [`ClientRuntime`]: the runtime a PV client runs on, its own (two worker
//! threads), so its futures can be awaited from any executor and keep
//! running while the caller is busy. Built on a helper thread: the caller
//! may be inside another runtime, where blocking on this one's start is not
//! allowed; shut down without blocking, for the same reason.

use crate::error::ClientError;

/// A client's own runtime; shut down (without blocking) when dropped.
pub(crate) struct ClientRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl ClientRuntime {
    /// Starts the runtime (threads named `skyrun-PROTOCOL`) and `init`
    /// on it; a failure is the client's start error.
    pub(crate) fn start<T: Send + 'static>(
        protocol: &'static str,
        init: impl FnOnce(&tokio::runtime::Runtime) -> Result<T, String> + Send + 'static,
    ) -> Result<(Self, T), ClientError> {
        let fail = |reason: String| ClientError::Start { protocol, reason };
        let started = std::thread::Builder::new()
            .name(format!("skyrun-{protocol}-start"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(format!("skyrun-{protocol}"))
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let client = init(&runtime)?;
                Ok::<_, String>((runtime, client))
            })
            .map_err(|e| fail(e.to_string()))?
            .join()
            .map_err(|_| fail("the start thread panicked".into()))?;
        let (runtime, client) = started.map_err(fail)?;
        Ok((
            ClientRuntime {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
            },
            client,
        ))
    }

    /// The runtime's handle.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        // Never blocks: a client may be dropped inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
