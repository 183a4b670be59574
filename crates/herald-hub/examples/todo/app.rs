//! The to-do service: the application's own routes, with the hub beside
//! them. Kept apart from `main.rs` so that the crate's tests run this very
//! code (tests/example_todo.rs).

use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_hub::PublishForm;
use herald_hub::{Hub, HUB_PATH};
use serde_json::{json, Value};

/// Where the hub's routes are mounted in the application.
pub(crate) const HUB_PREFIX: &str = "/hub";

/// The topic every change to the list is published on. Any URI works; this
/// one is the list's own URL, as Mercure suggests.
pub(crate) const TOPIC: &str = "https://todo.example/todos";

/// The hub's stream as the application serves it: give it to
/// `Server::stream_path` so that subscribers take the lean path.
pub(crate) fn stream_path() -> String {
    format!("{HUB_PREFIX}{HUB_PATH}")
}

/// One item of the list.
#[derive(Clone)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
}

impl Todo {
    fn json(&self) -> Value {
        json!({"id": self.id, "title": self.title, "done": self.done})
    }
}

#[derive(Clone)]
struct App {
    hub: Hub,
    todos: Arc<Mutex<Vec<Todo>>>,
}

/// The application's router: its page and API, and the hub under
/// [`HUB_PREFIX`].
pub(crate) fn router(hub: Hub) -> Router {
    let app = App {
        hub: hub.clone(),
        todos: Arc::default(),
    };
    Router::new()
        .route("/", get(page))
        .route("/todos", get(list).post(add))
        .route("/todos/{id}/done", post(done))
        .with_state(app)
        .nest(HUB_PREFIX, hub.router())
}

async fn page() -> Html<String> {
    Html(
        include_str!("index.html")
            .replace("{{STREAM}}", &stream_path())
            .replace("{{TOPIC}}", TOPIC),
    )
}

async fn list(State(app): State<App>) -> Json<Value> {
    let todos = app.todos.lock().unwrap_or_else(|e| e.into_inner());
    Json(Value::Array(todos.iter().map(Todo::json).collect()))
}

#[derive(serde::Deserialize)]
struct NewTodo {
    title: String,
}

async fn add(State(app): State<App>, Form(new): Form<NewTodo>) -> Response {
    let title = new.title.trim();
    if title.is_empty() || title.len() > 200 {
        return (StatusCode::BAD_REQUEST, "a title of 1 to 200 bytes\n").into_response();
    }
    let todo = {
        let mut todos = app.todos.lock().unwrap_or_else(|e| e.into_inner());
        let todo = Todo {
            id: todos.last().map_or(1, |last| last.id + 1),
            title: title.to_owned(),
            done: false,
        };
        todos.push(todo.clone());
        todo
    };
    announce(&app.hub, "added", &todo).await
}

async fn done(State(app): State<App>, Path(id): Path<u64>) -> Response {
    let todo = {
        let mut todos = app.todos.lock().unwrap_or_else(|e| e.into_inner());
        let Some(todo) = todos.iter_mut().find(|t| t.id == id) else {
            return (StatusCode::NOT_FOUND, "no such to-do\n").into_response();
        };
        todo.done = true;
        todo.clone()
    };
    announce(&app.hub, "done", &todo).await
}

/// Publishes the change to every open page; answers with the item once the
/// hub has stored the update (so a page that reloads now replays it).
async fn announce(hub: &Hub, change: &str, todo: &Todo) -> Response {
    let form = PublishForm {
        topics: vec![TOPIC.to_owned()],
        data: json!({"change": change, "todo": todo.json()}).to_string(),
        ..PublishForm::default()
    };
    match hub.publish(form).await {
        Ok(_id) => (StatusCode::OK, Json(todo.json())).into_response(),
        // Saved in the list, but the pages were not told: say so.
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("saved, but not announced: {e}\n"),
        )
            .into_response(),
    }
}
