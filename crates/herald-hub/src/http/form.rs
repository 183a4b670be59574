//! Reading a form body (a publish, or the parameters of a `QUERY`
//! subscription) within the body limit.

use axum::body::Body;
use axum::http::header;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::fields::{as_text, Fields};
use super::Rejection;

/// How far past the limit a refused body is still read, and dropped. A
/// request refused before its body is read would otherwise be answered on
/// a connection that still has that body coming in: closing it resets the
/// connection, and a client (or a reverse proxy, which sends the whole body
/// before it reads the answer: nginx turns the reset into a 502) never sees
/// the refusal. A longer body is refused at once and its connection
/// closed.
pub(crate) const DRAIN_BEYOND_LIMIT: u64 = 16 * 1024 * 1024;

/// The body, if it is `application/x-www-form-urlencoded` (or untyped) and
/// at most `limit` bytes, whether or not it declares its length. A refused
/// body is read to its end first ([`DRAIN_BEYOND_LIMIT`]).
pub(crate) async fn read_form(
    headers: &impl Fields,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let drain_limit = (limit as u64).saturating_add(DRAIN_BEYOND_LIMIT);
    if let Err(refused) = check_form_type(headers) {
        drain(body, drain_limit).await;
        return Err(refused);
    }
    let declared = headers
        .text(&header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&n| n > limit as u64) {
        if declared <= drain_limit {
            drain(body, drain_limit).await;
        }
        return Err(Rejection::TooLarge(limit));
    }
    let mut form = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Rejection::UnreadableBody(format!("could not read the request body: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if form.len() + data.len() > limit {
            let read = (form.len() + data.len()) as u64;
            drain(body, drain_limit.saturating_sub(read)).await;
            return Err(Rejection::TooLarge(limit));
        }
        form.extend_from_slice(&data);
    }
    Ok(form.freeze())
}

/// Refuses a body whose `Content-Type` is not
/// `application/x-www-form-urlencoded`; an untyped body passes.
pub(crate) fn check_form_type(headers: &impl Fields) -> Result<(), Rejection> {
    let Some(content_type) = headers.first(&header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = as_text(content_type)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType)
    }
}

/// Reads and drops what is left of `body`, up to `budget` bytes: the rest
/// of a request that is refused, so that the connection can answer it (and
/// stay open). A body that fails or goes past the budget is left alone.
pub(crate) async fn drain(mut body: Body, budget: u64) {
    let mut left = budget;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            match left.checked_sub(data.len() as u64) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    }
}
