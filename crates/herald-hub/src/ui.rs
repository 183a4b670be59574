//! The web UI: a live page, a debugger and live stats, beside the hub path.
//!
//! The page (`/`) is plain HTML, CSS and JavaScript from the crate's
//! `web/` folder, embedded in the binary at build time: no front-end build
//! step, nothing to deploy. It subscribes and publishes through the hub's
//! own `/.well-known/mercure`, like any client. Its stats view follows
//! [`STATS_PATH`], an event stream of the hub's counters (one JSON snapshot
//! a second), so the hub reports on itself over SSE. Served when
//! [`HubConfig::ui`](crate::HubConfig::ui) is on (the default).

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::time::MissedTickBehavior;

use crate::metrics::MetricsSnapshot;
use crate::Hub;

/// The event stream of the hub's counters that the stats view follows.
pub const STATS_PATH: &str = "/.well-known/herald/stats";

/// How often the stats stream sends a snapshot.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");
const ICON_SVG: &str = include_str!("../web/icon.svg");

/// Everything the page loads comes from the hub itself.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The UI's routes, to be merged into the hub's router.
pub(crate) fn routes() -> Router<Hub> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/ui/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        )
        .route(STATS_PATH, get(stats))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /.well-known/herald/stats`: a snapshot of the counters at once and
/// then every second, as `stats` events, until the hub shuts down.
async fn stats(State(hub): State<Hub>) -> Response {
    let mut ticker = tokio::time::interval(STATS_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold((hub, ticker), |(hub, mut ticker)| async move {
        ticker.tick().await;
        if hub.is_shutting_down() {
            return None;
        }
        let frame = stats_frame(&hub.metrics());
        Some((Ok::<_, std::convert::Infallible>(frame), (hub, ticker)))
    });
    crate::http::event_stream(stream)
}

/// One `stats` event: the snapshot as a JSON object.
pub(crate) fn stats_frame(m: &MetricsSnapshot) -> Bytes {
    let json = serde_json::json!({
        "time": crate::history::now_ms(),
        "subscribers": m.subscribers,
        "subscriptions_total": m.subscriptions_total,
        "publishes_total": m.publishes_total,
        "publishes_rejected_total": m.publishes_rejected_total,
        "events_delivered_total": m.events_delivered_total,
        "slow_disconnects_total": m.slow_disconnects_total,
        "history_events": m.history.events,
        "history_bytes": m.history.bytes,
        "history_last_sequence": m.history.last_seq,
    })
    .to_string();
    // JSON from serde_json holds no raw line break and the event name is
    // fixed, so encoding cannot fail; fall back to a comment just in case.
    herald_sse::Frame::new()
        .event("stats")
        .data(&json)
        .encode()
        .unwrap_or_else(|_| herald_sse::comment("stats unavailable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_frame_is_one_json_event() {
        let frame = stats_frame(&MetricsSnapshot {
            subscribers: 3,
            publishes_total: 7,
            ..MetricsSnapshot::default()
        });
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("event: stats\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(text["event: stats\ndata: ".len()..].trim_end()).unwrap();
        assert_eq!(json["subscribers"], 3);
        assert_eq!(json["publishes_total"], 7);
        assert_eq!(json["events_delivered_total"], 0);
    }

    #[test]
    fn the_page_references_only_embedded_assets() {
        for asset in ["/ui/app.js", "/ui/style.css", "/ui/icon.svg"] {
            assert!(
                INDEX_HTML.contains(asset),
                "index.html does not load {asset}"
            );
        }
    }
}
