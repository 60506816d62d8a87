//! `python -m skyrun service`: blueapi's REST API — the routes and the
//! worker of `skyrun::service`, the same that `skyrun service` serves —
//! over Python plan functions and Python devices, run on a Python
//! `skyrun.RunEngine`.
//!
//! [`PyBackend`] is the service's `Backend`: listing the plans and devices,
//! checking a task's parameters and making its generator are Python's
//! (`skyrun/service.py`'s `Environment`, with pydantic, as blueapi does);
//! the generator runs on the RunEngine's engine through the plan driver
//! ([`python_plan`]), as `RE(plan)` runs it, under the task's span. The
//! server runs on a thread of its own ([`ServiceHandle`]), so Python's main
//! thread stays free to take Ctrl-C and SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::RecvTimeoutError;
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::{Map, Value};
use skyrun::run_engine::EngineState;
use skyrun::service::{
    self, model::ArgumentError, model::DeviceModel, model::PlanModel, Backend, BoxFuture,
    ControlReq, Ended, Job, Prepared, ServiceOptions, TaskSpan,
};
use skyrun::{ExitStatus, RunEngine};
use skyrun_actors::{SpanTracer, TraceCarrier};
use tokio::sync::oneshot;

use crate::engine::Engine;
use crate::event_loop::LoopDriver;
use crate::plan::{python_plan, ErrorSlot};
use crate::runtime::{self, Runtime};

/// How long starting the service may take (binding, loading the task record).
const START_LIMIT: Duration = Duration::from_secs(30);

/// A task's parameters, checked: the Python object `Environment.begin` turns into the generator.
struct PyPrepared(Py<PyAny>);

/// The plans and devices of a Python `Environment`, run on a Python RunEngine.
struct PyBackend {
    /// `skyrun.service.Environment`.
    env: Py<PyAny>,
    /// The Python `skyrun.RunEngine` (the plan driver's hooks: metadata, local commands).
    hooks: Py<PyAny>,
    re: RunEngine,
    driver: Option<Py<LoopDriver>>,
    tracer: SpanTracer,
    runtime: &'static Runtime,
}

/// `ExcType: message` of a Python exception.
fn describe(py: Python<'_>, e: &PyErr) -> String {
    format!("{}: {}", type_name(py, e), e.value(py))
}

fn type_name(py: Python<'_>, e: &PyErr) -> String {
    e.get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into())
}

impl PyBackend {
    /// Calls `Environment.NAME()`, which answers a JSON string, parsed as `T`.
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, String> {
        Python::attach(|py| {
            let text: String = self
                .env
                .call_method0(py, name)
                .and_then(|v| v.extract(py))
                .map_err(|e| describe(py, &e))?;
            serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))
        })
    }

    /// What the plan left: its Python exception's type and message on
    /// failure, its return value (as blueapi's `TaskResult` holds it) on success.
    fn refine(py: Python<'_>, env: &Py<PyAny>, slots: &ErrorSlot, ended: &mut Ended) {
        let error = slots.error.lock().take();
        let value = slots.value.lock().take();
        match ended.exit_status {
            ExitStatus::Fail => {
                if let Some(e) = error {
                    ended.error_type = Some(type_name(py, &e));
                    let msg = e.value(py).to_string();
                    if !msg.is_empty() {
                        ended.reason = msg;
                    }
                }
            }
            ExitStatus::Success => {
                let Some(v) = value.filter(|v| !v.is_none(py)) else {
                    return;
                };
                let r = env
                    .call_method1(py, "result", (v,))
                    .and_then(|r| r.extract::<(String, String)>(py));
                match r {
                    Ok((json, kind)) => {
                        let value = serde_json::from_str(&json).unwrap_or(Value::Null);
                        ended.result = Some((value, kind));
                    }
                    Err(e) => e.print(py),
                }
            }
            ExitStatus::Abort => {}
        }
    }
}

impl Backend for PyBackend {
    fn plans(&self) -> Vec<PlanModel> {
        self.json("plans_json").unwrap_or_else(|e| {
            eprintln!("skyrun service: the plans cannot be listed: {e}");
            Vec::new()
        })
    }

    fn has_plan(&self, name: &str) -> bool {
        Python::attach(|py| {
            self.env
                .call_method1(py, "has_plan", (name,))
                .and_then(|v| v.extract::<bool>(py))
                .unwrap_or(false)
        })
    }

    fn devices(&self) -> Vec<DeviceModel> {
        self.json("devices_json").unwrap_or_else(|e| {
            eprintln!("skyrun service: the devices cannot be listed: {e}");
            Vec::new()
        })
    }

    fn prepare(
        &self,
        name: &str,
        params: &Map<String, Value>,
        metadata: &Map<String, Value>,
    ) -> Result<Prepared, Vec<ArgumentError>> {
        let params = Value::Object(params.clone()).to_string();
        let metadata = Value::Object(metadata.clone()).to_string();
        Python::attach(|py| {
            let r = self
                .env
                .call_method1(py, "prepare", (name, params, metadata))
                .and_then(|r| r.extract::<(Option<String>, Py<PyAny>)>(py));
            match r {
                Ok((None, prepared)) => Ok(Box::new(PyPrepared(prepared)) as Prepared),
                Ok((Some(errors), _)) => Err(serde_json::from_str(&errors).unwrap_or_else(|e| {
                    vec![ArgumentError {
                        loc: vec!["body".into(), "params".into()],
                        msg: format!("the parameters' errors could not be read: {e}"),
                        kind: "value_error".into(),
                        input: Value::Null,
                    }]
                })),
                Err(e) => Err(vec![ArgumentError {
                    loc: vec!["body".into(), "params".into()],
                    msg: format!("Value error, {}", describe(py, &e)),
                    kind: "value_error".into(),
                    input: Value::Null,
                }]),
            }
        })
    }

    fn run(&self, job: Job) -> bool {
        let Ok(prepared) = job.prepared.downcast::<PyPrepared>() else {
            let _ = job.done.send(Ended::failed(
                "RunEngineError",
                "the task was prepared by another backend",
            ));
            return true;
        };
        let (env, hooks, driver) = Python::attach(|py| {
            (
                self.env.clone_ref(py),
                self.hooks.clone_ref(py),
                self.driver.as_ref().map(|d| d.clone_ref(py)),
            )
        });
        let (re, tracer) = (self.re.clone(), self.tracer.clone());
        let (task_id, plan_name, parent, done) = (job.task_id, job.plan_name, job.parent, job.done);
        self.runtime.spawn(move || async move {
            let (span, run_parent) = TaskSpan::start(&tracer, &parent, &task_id, &plan_name);
            let slots = ErrorSlot::default();
            // The plan's messages take Python's current context: the task's span, until `end`.
            let carrier: HashMap<String, String> = TraceCarrier::inject(&run_parent)
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            // The generator is made on the engine thread, as the plan is about to run.
            let made = Python::attach(|py| {
                env.call_method1(py, "begin", (&prepared.0, &hooks, carrier))
                    .map(|gen| python_plan(gen, hooks.clone_ref(py), slots.clone(), driver))
                    .map_err(|e| (type_name(py, &e), e.value(py).to_string()))
            });
            let mut ended = match made {
                Ok(plan) => Ended::from_run(re.run_with_parent(plan, run_parent).await),
                Err((kind, reason)) => Ended::failed(kind, reason),
            };
            Python::attach(|py| {
                if let Err(e) = env.call_method1(py, "end", (&prepared.0,)) {
                    e.print(py);
                }
                PyBackend::refine(py, &env, &slots, &mut ended)
            });
            span.end(&ended);
            let _ = done.send(ended);
        });
        true
    }

    fn control(&self, req: ControlReq, limit: Duration) -> BoxFuture<Result<(), String>> {
        if let ControlReq::Abort(reason) = &req {
            // The Python RunEngine puts it in the stop documents of the plan's runs.
            Python::attach(|py| {
                if let Err(e) = self.hooks.setattr(py, "_abort_reason", reason) {
                    e.print(py);
                }
            });
        }
        let re = self.re.clone();
        let (tx, rx) = oneshot::channel();
        self.runtime.spawn(move || async move {
            let r = match req {
                ControlReq::Pause { defer } => re.pause(defer).await,
                ControlReq::Resume => re.resume().await,
                ControlReq::Abort(reason) => re.abort(reason).await,
                ControlReq::Stop => re.stop().await,
            };
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        Box::pin(async move {
            match tokio::time::timeout(limit, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the engine has stopped".into()),
                Err(_) => Err(format!("the engine did not answer within {limit:?}")),
            }
        })
    }

    fn ping(&self, limit: Duration) -> BoxFuture<Option<EngineState>> {
        let re = self.re.clone();
        let (tx, rx) = oneshot::channel();
        self.runtime.spawn(move || async move {
            // A round trip through the engine actor's mailbox.
            if re.rewindable().await.is_ok() {
                let _ = tx.send(re.state());
            }
        });
        Box::pin(async move { tokio::time::timeout(limit, rx).await.ok()?.ok() })
    }

    fn reload(&self) -> Option<BoxFuture<Result<(), String>>> {
        let env = Python::attach(|py| self.env.clone_ref(py));
        Some(Box::pin(async move {
            let load = move || {
                Python::attach(|py| {
                    env.call_method0(py, "reload")
                        .map(|_| ())
                        .map_err(|e| describe(py, &e))
                })
            };
            tokio::task::spawn_blocking(load)
                .await
                .unwrap_or_else(|e| Err(format!("the reload failed: {e}")))
        }))
    }
}

/// A running service: where it listens; `stop()` ends it, `wait()` waits for its end.
#[pyclass(name = "ServiceHandle", module = "skyrun._skyrun", frozen)]
pub struct ServiceHandle {
    address: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    ended: crossbeam::channel::Receiver<Result<(), String>>,
    outcome: Mutex<Option<Result<(), String>>>,
}

#[pymethods]
impl ServiceHandle {
    /// `host:port` the service listens on.
    #[getter]
    fn address(&self) -> String {
        self.address.to_string()
    }

    /// Asks the server to finish (open requests are answered first).
    fn stop(&self) {
        if let Some(tx) = self.stop.lock().take() {
            let _ = tx.send(());
        }
    }

    /// Waits up to `timeout` seconds for the server to end: `True` once it
    /// has; raises `OSError` if it failed.
    fn wait(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let mut outcome = self.outcome.lock();
        if outcome.is_none() {
            let limit = Duration::from_secs_f64(timeout.max(0.0));
            match py.detach(|| self.ended.recv_timeout(limit)) {
                Ok(r) => *outcome = Some(r),
                Err(RecvTimeoutError::Timeout) => return Ok(false),
                Err(RecvTimeoutError::Disconnected) => {
                    *outcome = Some(Err("the service thread ended without a word".into()))
                }
            }
        }
        match outcome.as_ref() {
            Some(Err(e)) => Err(PyOSError::new_err(e.clone())),
            _ => Ok(true),
        }
    }
}

/// Starts blueapi's REST API on `bind` over `env` (a `skyrun.service.Environment`)
/// and `run_engine` (a `skyrun.RunEngine`); the task record is kept in
/// `state_dir` (None: in memory). With `token_file`, every route but
/// `/config/oidc` and `/healthz` requires one of its bearer tokens; a
/// non-loopback `bind` needs it or `allow_unauthenticated` (`ValueError`
/// otherwise, as for a bad token file). Returns once the service listens.
#[pyfunction]
#[pyo3(signature = (env, run_engine, bind, state_dir=None, token_file=None, allow_unauthenticated=false))]
pub fn start_service(
    py: Python<'_>,
    env: Py<PyAny>,
    run_engine: Py<PyAny>,
    bind: &str,
    state_dir: Option<PathBuf>,
    token_file: Option<PathBuf>,
    allow_unauthenticated: bool,
) -> PyResult<ServiceHandle> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|e| PyValueError::new_err(format!("bind address '{bind}': {e}")))?;
    let tokens = token_file
        .as_deref()
        .map(service::Tokens::load)
        .transpose()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    // Refused before the service starts (`serve_backend` checks it again).
    service::check_exposure(addr, tokens.is_some(), allow_unauthenticated)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let engine = run_engine.getattr(py, "_engine")?;
    let engine = engine.cast_bound::<Engine>(py)?.get();
    let backend = PyBackend {
        env,
        hooks: run_engine,
        re: engine.run_engine().clone(),
        driver: engine.loop_driver().map(|d| d.clone_ref(py)),
        tracer: SpanTracer::global(skyrun::telemetry::spans::ENGINE_SCOPE),
        runtime: runtime::get(py),
    };
    let (listening_tx, listening) = crossbeam::channel::bounded(1);
    let (ended_tx, ended) = crossbeam::channel::bounded(1);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut opts = ServiceOptions::new(addr);
    opts.state_dir = state_dir;
    opts.tokens = tokens;
    opts.allow_unauthenticated = allow_unauthenticated;
    opts.on_listening = Some(Box::new(move |addr| {
        let _ = listening_tx.send(addr);
    }));
    std::thread::Builder::new()
        .name("skyrun-service-http".into())
        .spawn(move || {
            let re = backend.re.clone();
            let mut subscription = None;
            let r = service::serve_backend(
                |sink| {
                    subscription = Some(re.subscribe(sink));
                    Ok(Arc::new(backend))
                },
                opts,
                async move {
                    let _ = stop_rx.await;
                },
            );
            if let Some(id) = subscription {
                re.unsubscribe(id);
            }
            let _ = ended_tx.send(r.map_err(|e| e.to_string()));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the service thread: {e}")))?;
    let address = py.detach(|| {
        crossbeam::channel::select! {
            recv(listening) -> a => a.map_err(|_| "the service stopped while starting".to_owned()),
            recv(ended) -> r => Err(match r {
                Ok(Err(e)) => e,
                _ => "the service stopped while starting".to_owned(),
            }),
            default(START_LIMIT) => Err(format!("the service did not listen within {START_LIMIT:?}")),
        }
    });
    let address = address.map_err(PyOSError::new_err)?;
    Ok(ServiceHandle {
        address,
        stop: Mutex::new(Some(stop_tx)),
        ended,
        outcome: Mutex::new(None),
    })
}
