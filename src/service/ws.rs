//! `WS /api/v2/run_plan`: blueapi's run-in-the-foreground protocol. The
//! client sends `{"kind": "submit", "task": TaskRequest}`; the service
//! answers `plan_not_found` (close 4001), `invalid_args` (4002) or `busy`
//! (1013), or starts the task and sends every update of it (WorkerEvents,
//! each document as a DataEvent) until the WorkerEvent that completes it,
//! then closes. A client that goes away aborts its own task, as blueapi's
//! route does.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::model::TaskRequest;
use super::routes::trace_context;
use super::worker::{BeginError, SubmitError, Worker};

/// The largest message a client may send.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// How long the client has to send its request after the handshake.
const SUBMIT_LIMIT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Request {
    Submit { task: TaskRequest },
}

/// The upgrade handler.
pub async fn run_plan(
    State(w): State<Arc<Worker>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let parent = trace_context(&headers);
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(w, socket, parent))
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn serve(w: Arc<Worker>, mut socket: WebSocket, parent: opentelemetry::Context) {
    let text = match tokio::time::timeout(SUBMIT_LIMIT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(Message::Binary(b)))) => match String::from_utf8(b.to_vec()) {
            Ok(t) => t.into(),
            Err(_) => return close(socket, 1007, "Invalid Request").await,
        },
        _ => return close(socket, 1007, "Invalid Request").await,
    };
    let Ok(Request::Submit { task }) = serde_json::from_str::<Request>(&text) else {
        return close(socket, 1007, "Invalid Request").await;
    };
    let name = task.name.clone();
    let task_id = match w.submit(task, None) {
        Ok(id) => id,
        Err(SubmitError::UnknownPlan(_)) => {
            let msg = json!({"kind": "plan_not_found", "plan_name": name}).to_string();
            let _ = socket.send(Message::Text(msg.into())).await;
            return close(socket, 4001, "Unknown Plan").await;
        }
        Err(SubmitError::Invalid(errors)) => {
            let msg = json!({"kind": "invalid_args", "errors": errors}).to_string();
            let _ = socket.send(Message::Text(msg.into())).await;
            return close(socket, 4002, "Invalid Args").await;
        }
    };
    // Subscribe before the task starts, so no update is missed.
    let mut updates = w.subscribe();
    match w.begin(&task_id, parent) {
        Ok(()) => {}
        Err(
            BeginError::Busy
            | BeginError::NotFound
            | BeginError::EngineGone
            | BeginError::Foreign(_),
        ) => {
            w.clear(&task_id);
            let msg = json!({"kind": "busy"}).to_string();
            let _ = socket.send(Message::Text(msg.into())).await;
            return close(socket, 1013, "Worker busy").await;
        }
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                // The client may send nothing more; anything it sends is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    w.abort_if_active(&task_id, "Client disconnected").await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            update = updates.recv() => match update {
                Ok(u) if u.task_id == task_id => {
                    if socket.send(Message::Text(u.json.to_string().into())).await.is_err() {
                        w.abort_if_active(&task_id, "Client disconnected").await;
                        return;
                    }
                    if u.completes {
                        break;
                    }
                }
                Ok(_) => {}
                // Too slow a reader: updates were dropped. Say so when the task has ended.
                Err(RecvError::Lagged(_)) => {
                    if w.task(&task_id).is_some_and(|t| t.is_complete) {
                        let _ = socket.send(Message::Text(w.completion(&task_id).to_string().into())).await;
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
