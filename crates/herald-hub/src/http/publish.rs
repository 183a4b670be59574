//! `POST /.well-known/mercure`: the start of the publish path.
//!
//! Authenticate the publisher, read the form within the body limit,
//! validate it, check every topic against the token's `mercure.publish`,
//! then hand the update to the hub (history, then fan-out). Any refusal
//! happens before anything is stored or dispatched.
//!
//! Two ways in: the router's handler ([`publish`]), and [`Endpoint`] for a
//! publish the server read whole itself (`server::publish`, a publisher's
//! keep-alive connection), which skips the router, the request and the
//! response structures but not one of the checks.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::fields::Fields;
use super::form::check_form_type;
use super::token::{presented_token, TokenSource};
use super::Rejection;
use crate::auth;
use crate::hub::PublishError;
use crate::matcher::Topic;
use crate::metrics::Metrics;
use crate::protocol::parse_publish;
use crate::Hub;

// The request whole rather than `RawQuery` and `HeaderMap` extractors,
// which copy the query and every header field of every publish.
pub(crate) async fn publish(State(hub): State<Hub>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    match accept(
        &hub,
        parts.uri.query(),
        &parts.headers,
        Form::Unread(&mut body),
    )
    .await
    {
        // `server::http1::published` writes this answer's bytes itself.
        Ok(id) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], id).into_response(),
        Err(rejection) => {
            // Refused before its body was read (no token, a token refused):
            // read it first, so that the answer reaches the client
            // (super::form::DRAIN_BEYOND_LIMIT).
            if let Some(body) = body {
                let budget = (hub.shared.config.max_body as u64)
                    .saturating_add(super::form::DRAIN_BEYOND_LIMIT);
                super::form::drain(body, budget).await;
            }
            refused(&hub, rejection)
        }
    }
}

/// The publish endpoint for publishes the server reads whole itself: the
/// same checks and the same answers as the router's [`publish`], for the
/// requests it [`answers`](Endpoint::answers).
#[derive(Clone)]
pub(crate) struct Endpoint {
    hub: Hub,
    /// The hub's router has a CORS policy (`super::cors`), which adds
    /// `Vary: Origin` to every answer.
    cors: bool,
}

impl Endpoint {
    /// The endpoint of the router `hub.router()` builds.
    pub(crate) fn new(hub: &Hub) -> Endpoint {
        Endpoint {
            hub: hub.clone(),
            cors: !hub.shared.config.cors_origins.is_empty(),
        }
    }

    /// Whether the router would answer this request exactly as
    /// [`Endpoint::publish`] does: always, except a request with an
    /// `Origin` under a CORS policy, whose answer is the policy's to add
    /// to.
    pub(crate) fn answers(&self, fields: &impl Fields) -> bool {
        !self.cors || fields.first(&header::ORIGIN).is_none()
    }

    /// Whether answers carry `Vary: Origin`.
    pub(crate) fn varies_by_origin(&self) -> bool {
        self.cors
    }

    /// Publishes the form `body` of a request with the raw query string
    /// `query` and the header `fields`: the update's id, or the refusal to
    /// send.
    pub(crate) async fn publish(
        &self,
        query: Option<&str>,
        fields: &impl Fields,
        body: &[u8],
    ) -> Result<String, Response> {
        let accepted = accept(&self.hub, query, fields, Form::Read(body)).await;
        accepted.map_err(|rejection| {
            let mut response = refused(&self.hub, rejection);
            if self.cors {
                super::cors::vary_by_origin(response.headers_mut());
            }
            response
        })
    }
}

/// A refusal's answer, counted.
fn refused(hub: &Hub, rejection: Rejection) -> Response {
    Metrics::inc(&hub.shared.metrics.publishes_rejected_total);
    rejection.respond(hub)
}

/// A publish's form body.
enum Form<'a> {
    /// Still to be read, within the body limit; taken when it is.
    Unread(&'a mut Option<Body>),
    /// Read whole already (never beyond the body limit).
    Read(&'a [u8]),
}

/// Accepts the publish.
async fn accept(
    hub: &Hub,
    query: Option<&str>,
    headers: &impl Fields,
    body: Form<'_>,
) -> Result<String, Rejection> {
    let shared = &hub.shared;
    let presented = presented_token(headers, query, shared.config.protocol)
        .map_err(Rejection::from)?
        .ok_or_else(|| {
            Rejection::TokenMissing(
                "publishing needs a JWT: send it as \"Authorization: Bearer <token>\"".into(),
            )
        })?;
    if matches!(presented.source, TokenSource::Cookie(_))
        && !origin_allowed(headers, &shared.config.publish_origins)
    {
        return Err(Rejection::Forbidden(
            "publishing with a token cookie is only allowed from the configured publish origins"
                .into(),
        ));
    }
    let grants = auth::verify_publisher(shared, &presented.token).await?;
    if let Some(rate) = &shared.publish_rate {
        rate.admit(&presented.token).map_err(|wait| {
            Metrics::inc(&shared.metrics.publishes_rate_limited_total);
            Rejection::TooManyRequests {
                message: format!(
                    "this token may publish {} times per second; retry later",
                    rate.per_second()
                ),
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })?;
    }
    let read;
    let bytes = match body {
        Form::Unread(body) => {
            let body = body.take().unwrap_or_default();
            read = super::read_form(headers, body, shared.config.max_body).await?;
            &read[..]
        }
        Form::Read(bytes) => {
            check_form_type(headers)?;
            if bytes.len() > shared.config.max_body {
                return Err(Rejection::TooLarge(shared.config.max_body));
            }
            bytes
        }
    };
    let form = parse_publish(bytes, &shared.config.limits).map_err(Rejection::BadUpdate)?;
    // What no token can allow is refused before authorization looks at it.
    let update = hub.update_as(form, grants.revision).map_err(invalid)?;
    let topics = update
        .topics()
        .iter()
        .map(|t| Topic::new(t, &shared.config.hub_url));
    if let Some(refusal) = grants.refuses_publish(topics) {
        return Err(Rejection::InsufficientScope(refusal));
    }
    let topics = update.topics().len();
    let private = update.is_private();
    let id = hub.publish_update(update).await.map_err(invalid)?;
    tracing::debug!(%id, topics, private, "published");
    Ok(id)
}

fn invalid(e: PublishError) -> Rejection {
    match e {
        PublishError::Invalid(e) => Rejection::BadUpdate(e),
        PublishError::History(e) => Rejection::NotStored(e),
    }
}

/// The CSRF guard: a cookie-authenticated publish must come from an allowed
/// origin (the `Origin` header, or else the origin of `Referer`).
fn origin_allowed(headers: &impl Fields, allowed: &[String]) -> bool {
    let origin = headers
        .text(&header::ORIGIN)
        .map(str::to_owned)
        .or_else(|| {
            let referer = headers.text(&header::REFERER)?;
            let uri: axum::http::Uri = referer.parse().ok()?;
            Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
        });
    let Some(origin) = origin else {
        return false;
    };
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(&origin))
}
