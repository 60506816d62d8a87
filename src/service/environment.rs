//! The service's environment for `skyrun service`: the devices of a device
//! file and the plans of a [`Catalog`], on the engine thread
//! ([`FileBackend`], the [`Backend`] the binary serves), and how to load
//! them again (`DELETE /environment`, blueapi's reload). A reload runs only
//! while no task is active; it reads the files anew and replaces the
//! engine's devices. When the files no longer load, the error is what
//! `GET /environment` reports, and the service goes on with what it had.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::{Map, Value};

use super::backend::{Backend, BoxFuture, ControlReq, Ended, Job, Prepared};
use super::catalog::Catalog;
use super::engine_thread::{EngineCmd, EngineLink};
use super::model::{ArgumentError, DeviceModel, PlanModel, ProtocolInfo};
use super::SpawnExtra;
use crate::config::{DeviceKind, DeviceSet, PlanFile};
use crate::run_engine::EngineState;

/// The devices and the plans.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The devices of the device file.
    pub set: DeviceSet,
    /// The plans.
    pub catalog: Catalog,
}

/// What a reload loads: the environment and the devices to add once the
/// engine has spawned the set's (remote proxies); `Err` says what is wrong
/// with the files.
pub type Loaded = Result<(Environment, Option<SpawnExtra>), String>;

/// Loads the environment anew from where it came from (the service's files).
pub type Loader = Arc<dyn Fn() -> Loaded + Send + Sync>;

/// How long the engine may take to replace its devices.
const RELOAD_LIMIT: Duration = Duration::from_secs(30);

/// A device file's devices and a catalog's plans, run on the engine thread.
pub struct FileBackend {
    link: EngineLink,
    env: Arc<RwLock<Arc<Environment>>>,
    loader: Option<Loader>,
}

impl FileBackend {
    pub(crate) fn new(link: EngineLink, env: Environment, loader: Option<Loader>) -> Self {
        FileBackend {
            link,
            env: Arc::new(RwLock::new(Arc::new(env))),
            loader,
        }
    }

    /// The devices and the plans.
    pub fn env(&self) -> Arc<Environment> {
        self.env.read().clone()
    }
}

/// Bluesky's protocols a device of `kind` follows.
fn protocols(kind: DeviceKind) -> Vec<ProtocolInfo> {
    let p = |name: &str, types: &[&str]| ProtocolInfo {
        name: name.to_owned(),
        types: types.iter().map(|t| (*t).to_owned()).collect(),
    };
    let mut out = Vec::new();
    if kind.readable() {
        out.push(p("Readable", &[]));
    }
    if kind.movable() {
        out.push(p("Movable", &["float"]));
    }
    if kind.triggerable() {
        out.push(p("Triggerable", &[]));
    }
    if kind == DeviceKind::Flyer {
        out.extend([p("Flyable", &[]), p("Collectable", &[])]);
    }
    out.push(p("Stageable", &[]));
    out
}

impl Backend for FileBackend {
    fn plans(&self) -> Vec<PlanModel> {
        self.env().catalog.models()
    }

    fn has_plan(&self, name: &str) -> bool {
        self.env().catalog.get(name).is_some()
    }

    fn devices(&self) -> Vec<DeviceModel> {
        self.env()
            .set
            .iter()
            .map(|d| DeviceModel {
                name: d.name.clone(),
                protocols: protocols(d.config.kind()),
            })
            .collect()
    }

    fn prepare(
        &self,
        name: &str,
        params: &Map<String, Value>,
        metadata: &Map<String, Value>,
    ) -> Result<Prepared, Vec<ArgumentError>> {
        let env = self.env();
        let mut file = env.catalog.prepare(name, params, &env.set)?;
        for (k, v) in metadata {
            file.add_metadata(k, v.clone());
        }
        Ok(Box::new(file))
    }

    fn run(&self, job: Job) -> bool {
        let file = match job.prepared.downcast::<PlanFile>() {
            Ok(file) => file,
            Err(_) => {
                let _ = job.done.send(Ended::failed(
                    "RunEngineError",
                    "the task was prepared by another backend",
                ));
                return true;
            }
        };
        self.link.send(EngineCmd::Run {
            task_id: job.task_id,
            plan_name: job.plan_name,
            file,
            parent: job.parent,
            done: job.done,
        })
    }

    fn control(&self, req: ControlReq, limit: Duration) -> BoxFuture<Result<(), String>> {
        let link = self.link.clone();
        Box::pin(async move { link.control(req, limit).await })
    }

    fn ping(&self, limit: Duration) -> BoxFuture<Option<EngineState>> {
        let link = self.link.clone();
        Box::pin(async move { link.ping(limit).await })
    }

    fn reload(&self) -> Option<BoxFuture<Result<(), String>>> {
        let loader = self.loader.clone()?;
        let (link, env) = (self.link.clone(), self.env.clone());
        Some(Box::pin(async move {
            let loaded = tokio::task::spawn_blocking(move || loader())
                .await
                .unwrap_or_else(|e| Err(format!("the reload failed: {e}")));
            let (new, extra) = loaded?;
            if link.reload(new.set.clone(), extra, RELOAD_LIMIT).await {
                *env.write() = Arc::new(new);
                Ok(())
            } else {
                Err(format!(
                    "the RunEngine did not take the new devices within {RELOAD_LIMIT:?}"
                ))
            }
        }))
    }
}
