//! [`PvClients`]: one [`PvClient`] for PV names of either protocol, as
//! ophyd-async writes them: `pva://NAME` goes to PVAccess (the `pva`
//! feature: a [`PvaClient`](crate::PvaClient) started with the first such
//! name), `ca://NAME` or a bare name to Channel Access. What device files
//! and the `skyrun` binary connect their devices with.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ca::CaClient;
use crate::client::{PvChannel, PvClient};
use crate::error::ClientError;

/// Channel Access and, on demand, PVAccess behind one client.
///
/// ```no_run
/// use skyrun_epics::{PvClient, PvClients};
/// let clients = PvClients::start().expect("the CA client starts");
/// let t = std::time::Duration::from_secs(2);
/// let ca = clients.runtime().block_on(clients.connect("BL:AO", t));
/// let pva = clients.runtime().block_on(clients.connect("pva://BL:AO", t));
/// ```
pub struct PvClients {
    ca: Arc<CaClient>,
    #[cfg(feature = "pva")]
    pva: parking_lot::Mutex<Option<Arc<crate::PvaClient>>>,
}

impl std::fmt::Debug for PvClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PvClients")
    }
}

impl PvClients {
    /// Starts the Channel Access client (configured from the environment);
    /// the PVAccess one starts with the first `pva://` name (configured from
    /// `EPICS_PVA_*`).
    pub fn start() -> Result<Arc<Self>, ClientError> {
        Ok(Arc::new(PvClients {
            ca: CaClient::start()?,
            #[cfg(feature = "pva")]
            pva: parking_lot::Mutex::new(None),
        }))
    }

    /// The Channel Access client.
    pub fn ca(&self) -> &Arc<CaClient> {
        &self.ca
    }

    #[cfg(feature = "pva")]
    fn pva(&self) -> Result<Arc<crate::PvaClient>, ClientError> {
        let mut pva = self.pva.lock();
        if let Some(c) = pva.as_ref() {
            return Ok(c.clone());
        }
        let started = crate::PvaClient::start(&[])?;
        *pva = Some(started.clone());
        Ok(started)
    }
}

#[async_trait]
impl PvClient for PvClients {
    fn protocol(&self) -> &'static str {
        "ca"
    }

    fn runtime(&self) -> tokio::runtime::Handle {
        self.ca.runtime()
    }

    async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn PvChannel>, ClientError> {
        if name.starts_with("pva://") {
            #[cfg(feature = "pva")]
            return self.pva()?.connect(name, timeout).await;
            #[cfg(not(feature = "pva"))]
            return Err(ClientError::Failed {
                pv: name.to_owned(),
                operation: "connect",
                server: String::new(),
                reason: "a PVAccess PV, and skyrun-epics was built without its `pva` feature"
                    .into(),
            });
        }
        self.ca
            .connect(name.strip_prefix("ca://").unwrap_or(name), timeout)
            .await
    }
}
