//! blueapi's REST routes, answered as blueapi 1.21.1 answers them: the same
//! paths (also under `/api/v1`), status codes and bodies (FastAPI's
//! `{"detail": ...}` on errors, 422 listing each bad parameter).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry::propagation::Injector as _;
use opentelemetry::Context;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use skyrun_actors::TraceCarrier;

use super::model::{
    DeviceResponse, EnvironmentResponse, PlanResponse, StateChangeRequest, TaskRequest,
    TaskResponse, TasksListResponse, WorkerTask,
};
use super::worker::{BeginError, ReloadError, SubmitError, Worker};

/// How long `/healthz` and `/worker/state` wait for the engine to answer.
pub const ENGINE_LIMIT: Duration = Duration::from_secs(2);

/// The REST routes (mounted at `/` and `/api/v1`, as blueapi mounts them).
pub fn rest() -> Router<Arc<Worker>> {
    Router::new()
        .route("/plans", get(plans))
        .route("/plans/{name}", get(plan))
        .route("/devices", get(devices))
        .route("/devices/{name}", get(device))
        .route("/worker/state", get(get_state).put(put_state))
        .route("/worker/task", get(get_active).put(put_active))
        .route("/tasks", get(list_tasks).post(submit))
        .route("/tasks/{id}", get(get_task).delete(delete_task))
        .route("/environment", get(environment).delete(delete_environment))
}

/// A FastAPI error body.
pub fn detail(code: StatusCode, detail: impl Into<Value>) -> Response {
    (code, Json(json!({ "detail": detail.into() }))).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Item not found")
}

/// The body as `T`, or FastAPI's 422 naming what is wrong (boxed: a
/// response is large, and errors are rare).
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        let (kind, loc, msg) = if let Some(field) = missing_field(&text) {
            (
                "missing",
                json!(["body", field]),
                "Field required".to_owned(),
            )
        } else if let Some(field) = unknown_field(&text) {
            (
                "extra_forbidden",
                json!(["body", field]),
                "Extra inputs are not permitted".to_owned(),
            )
        } else if e.is_syntax() || e.is_eof() {
            (
                "json_invalid",
                json!(["body", e.column()]),
                format!("JSON decode error: {text}"),
            )
        } else {
            ("value_error", json!(["body"]), text)
        };
        Box::new(detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{ "type": kind, "loc": loc, "msg": msg, "input": Value::Null }]),
        ))
    })
}

fn between<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    rest.split('`').next()
}

fn missing_field(text: &str) -> Option<&str> {
    between(text, "missing field `")
}

fn unknown_field(text: &str) -> Option<&str> {
    between(text, "unknown field `")
}

/// The client's trace context: W3C `traceparent`/`tracestate` (and the
/// other propagators' headers when installed), extracted with the global
/// propagator (W3C when none is installed).
pub fn trace_context(headers: &HeaderMap) -> Context {
    let mut carrier = TraceCarrier::empty();
    for key in ["traceparent", "tracestate", "baggage", "uber-trace-id"] {
        if let Some(v) = headers.get(key).and_then(|v| v.to_str().ok()) {
            carrier.set(key, v.to_owned());
        }
    }
    carrier.extract()
}

async fn plans(State(w): State<Arc<Worker>>) -> Json<PlanResponse> {
    Json(PlanResponse {
        plans: w.backend().plans(),
    })
}

async fn plan(State(w): State<Arc<Worker>>, Path(name): Path<String>) -> Response {
    match w.backend().plans().into_iter().find(|p| p.name == name) {
        Some(p) => Json(p).into_response(),
        None => not_found(),
    }
}

async fn devices(State(w): State<Arc<Worker>>) -> Json<DeviceResponse> {
    Json(DeviceResponse {
        devices: w.backend().devices(),
    })
}

async fn device(State(w): State<Arc<Worker>>, Path(name): Path<String>) -> Response {
    match w.backend().devices().into_iter().find(|d| d.name == name) {
        Some(d) => Json(d).into_response(),
        None => not_found(),
    }
}

async fn get_state(State(w): State<Arc<Worker>>) -> Response {
    let engine = w.engine_state(ENGINE_LIMIT).await;
    Json(w.state(engine)).into_response()
}

async fn put_state(State(w): State<Arc<Worker>>, bytes: Bytes) -> Response {
    let req: StateChangeRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    match w.set_state(req.new_state, req.defer, req.reason).await {
        Ok(()) => {
            let engine = w.engine_state(ENGINE_LIMIT).await;
            (StatusCode::ACCEPTED, Json(w.state(engine))).into_response()
        }
        Err(msg) => detail(StatusCode::BAD_REQUEST, msg),
    }
}

async fn get_active(State(w): State<Arc<Worker>>) -> Json<WorkerTask> {
    Json(WorkerTask {
        task_id: w.active(),
    })
}

async fn put_active(State(w): State<Arc<Worker>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let req: WorkerTask = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let Some(id) = req.task_id.clone() else {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "No task id provided");
    };
    if w.task(&id).is_none() {
        return not_found();
    }
    match w.begin(&id, trace_context(&headers)) {
        Ok(()) => Json(req).into_response(),
        Err(BeginError::Busy) => detail(StatusCode::CONFLICT, "Worker already active"),
        Err(BeginError::NotFound) => detail(
            StatusCode::CONFLICT,
            format!("Task {id} is not pending: it has already run"),
        ),
        Err(BeginError::EngineGone) => {
            detail(StatusCode::SERVICE_UNAVAILABLE, "The RunEngine has stopped")
        }
        Err(BeginError::Foreign(service)) => detail(
            StatusCode::CONFLICT,
            format!("Task {id} belongs to service '{service}': only it runs the task"),
        ),
    }
}

#[derive(Deserialize)]
struct TaskQuery {
    task_status: Option<String>,
}

async fn list_tasks(State(w): State<Arc<Worker>>, Query(q): Query<TaskQuery>) -> Response {
    let status = q.task_status.as_deref();
    if let Some(s) = status {
        if !["PENDING", "COMPLETE", "ERROR", "RUNNING"].contains(&s) {
            return detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!([{
                    "type": "enum",
                    "loc": ["query", "task_status"],
                    "msg": "Input should be 'PENDING', 'COMPLETE', 'ERROR' or 'RUNNING'",
                    "input": s,
                }]),
            );
        }
    }
    Json(TasksListResponse {
        tasks: w.tasks(status),
    })
    .into_response()
}

async fn submit(State(w): State<Arc<Worker>>, bytes: Bytes) -> Response {
    let req: TaskRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    match w.submit(req, None) {
        Ok(task_id) => (
            StatusCode::CREATED,
            [(axum::http::header::LOCATION, format!("/tasks/{task_id}"))],
            Json(TaskResponse { task_id }),
        )
            .into_response(),
        Err(SubmitError::UnknownPlan(_)) => not_found(),
        Err(SubmitError::Invalid(errors)) => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::to_value(errors).unwrap_or(Value::Null),
        ),
    }
}

async fn get_task(State(w): State<Arc<Worker>>, Path(id): Path<String>) -> Response {
    match w.task(&id) {
        Some(t) => Json(t).into_response(),
        None => not_found(),
    }
}

async fn delete_task(State(w): State<Arc<Worker>>, Path(id): Path<String>) -> Response {
    match w.clear(&id) {
        Some(Ok(task_id)) => Json(TaskResponse { task_id }).into_response(),
        Some(Err(msg)) => detail(StatusCode::CONFLICT, msg),
        None => not_found(),
    }
}

async fn environment(State(w): State<Arc<Worker>>) -> Json<EnvironmentResponse> {
    Json(w.environment())
}

async fn delete_environment(State(w): State<Arc<Worker>>) -> Response {
    match w.reload() {
        Ok(r) => Json(r).into_response(),
        Err(ReloadError::Busy) => detail(
            StatusCode::CONFLICT,
            "Worker busy: the environment is reloaded only while no task runs",
        ),
        Err(ReloadError::NoFiles) => detail(
            StatusCode::CONFLICT,
            "this service cannot load its plans and devices again",
        ),
    }
}

/// `GET /healthz`: 200 `{"status": "ok"}` when the engine answers within
/// [`ENGINE_LIMIT`], else 503 with why.
pub async fn healthz(State(w): State<Arc<Worker>>) -> Response {
    match w.engine_state(ENGINE_LIMIT).await {
        Some(_) => Json(json!({"status": "ok"})).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"detail": format!("the RunEngine did not answer within {ENGINE_LIMIT:?}")}),
            ),
        )
            .into_response(),
    }
}

/// `GET /config/oidc`: 204, no OIDC provider is configured (static
/// tokens, when given, are not announced: blueapi's client could not use them).
pub async fn oidc() -> StatusCode {
    StatusCode::NO_CONTENT
}
