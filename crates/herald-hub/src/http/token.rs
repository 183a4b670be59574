//! Finding the token a request presents, in the places each revision
//! allows.
//!
//! Draft-08 (§Presenting the Access Token) allows the `Authorization:
//! Bearer` header and the `__Secure-mercure_access_token` cookie; when the
//! header is present its token is used and any cookie ignored. Draft-07
//! clients also send the `mercureAuthorization` cookie and the
//! `authorization` query parameter, which stay accepted while the hub
//! speaks draft-07. An access token (`at+jwt`) in the query string is
//! refused whatever the hub speaks, and a hub speaking only draft-08
//! refuses any token there (RFC 9700 forbids it), rather than silently
//! ignoring it, so that a client learns why it is not authorized. For a
//! `QUERY` subscription the form body counts as the query string.

use std::borrow::Cow;
use std::fmt;

use axum::http::header::{AUTHORIZATION, COOKIE};

use super::fields::{as_text, Fields};
use super::Rejection;
use crate::protocol::{query_parameter, Protocol, Revision};

/// The draft-08 cookie a browser's `EventSource` carries its token in.
pub(crate) const ACCESS_TOKEN_COOKIE: &str = "__Secure-mercure_access_token";

/// The draft-07 cookie.
pub(crate) const DRAFT07_COOKIE: &str = "mercureAuthorization";

/// The draft-07 query parameter.
pub(crate) const QUERY_PARAMETER: &str = "authorization";

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `Authorization: Bearer` header.
    Header,
    /// The `authorization` query parameter (draft-07).
    Query,
    /// A cookie: `__Secure-mercure_access_token` (draft-08) or
    /// `mercureAuthorization` (draft-07).
    Cookie(Revision),
}

/// A token found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PresentedToken<'a> {
    /// The compact JWS, borrowed from the request unless decoded from a
    /// query string.
    pub(crate) token: Cow<'a, str>,
    /// Where it was found.
    pub(crate) source: TokenSource,
}

/// Why the credentials of a request are unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresentationError {
    /// Another authentication scheme than `Bearer`: as if no token were
    /// presented (RFC 6750 §3.1: a 401 without an error code).
    OtherScheme,
    /// A token presented in a way no revision the hub speaks allows: a 400
    /// with `error="invalid_request"` (RFC 6750 §3.1).
    Malformed(&'static str),
}

impl fmt::Display for PresentationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresentationError::OtherScheme => f.write_str(
                "the Authorization header must use the Bearer scheme: \"Bearer <token>\"",
            ),
            PresentationError::Malformed(why) => f.write_str(why),
        }
    }
}

impl From<PresentationError> for Rejection {
    fn from(e: PresentationError) -> Rejection {
        match e {
            PresentationError::OtherScheme => Rejection::TokenMissing(e.to_string()),
            PresentationError::Malformed(_) => Rejection::InvalidRequest(e.to_string()),
        }
    }
}

/// Finds the request's token: the `Authorization` header; else, when the
/// hub speaks draft-07, the `authorization` query parameter (`query` is the
/// raw query string); else the draft-08 cookie, then the draft-07 one, each
/// when the hub speaks its revision. An empty parameter or cookie counts as
/// absent.
pub(crate) fn presented_token<'a>(
    headers: &'a impl Fields,
    query: Option<&str>,
    protocol: Protocol,
) -> Result<Option<PresentedToken<'a>>, PresentationError> {
    let found = |token, source| Ok(Some(PresentedToken { token, source }));
    let mut authorization = headers.all(&AUTHORIZATION);
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(PresentationError::Malformed(
                "send one Authorization header, not several",
            ));
        }
        return found(Cow::Borrowed(bearer_token(value)?), TokenSource::Header);
    }
    let in_query = query
        .map(|q| query_parameter(q, QUERY_PARAMETER))
        .transpose()
        .map_err(|_| {
            PresentationError::Malformed(
                "the \"authorization\" query parameter is not valid UTF-8 once decoded",
            )
        })?
        .flatten();
    if let Some(token) = in_query {
        if !protocol.speaks(Revision::Draft07) {
            return Err(PresentationError::Malformed(
                "this hub does not accept a token in the request's parameters, the query string or a QUERY body (draft-08): send it in the Authorization header or the __Secure-mercure_access_token cookie",
            ));
        }
        // Only draft-07 tokens may come this way: access tokens never travel
        // in URLs (draft-08 §Security Considerations), whatever else the
        // hub speaks.
        if crate::access_token::is_access_token(&token) {
            return Err(PresentationError::Malformed(
                "an access token (typ at+jwt) is never accepted in the query string or a QUERY body (draft-08): send it in the Authorization header or the __Secure-mercure_access_token cookie",
            ));
        }
        return found(Cow::Owned(token), TokenSource::Query);
    }
    for (name, revision) in [
        (ACCESS_TOKEN_COOKIE, Revision::Draft08),
        (DRAFT07_COOKIE, Revision::Draft07),
    ] {
        if protocol.speaks(revision) {
            if let Some(token) = cookie(headers, name)? {
                return found(Cow::Borrowed(token), TokenSource::Cookie(revision));
            }
        }
    }
    Ok(None)
}

/// `Bearer <token>`: the scheme is case-insensitive, the token one word.
fn bearer_token(value: &[u8]) -> Result<&str, PresentationError> {
    const NOT_BEARER: PresentationError = PresentationError::Malformed(
        "the Authorization header must be a single \"Bearer <token>\"",
    );
    let value = as_text(value).ok_or(NOT_BEARER)?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(PresentationError::OtherScheme);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.contains([' ', '\t']) {
        return Err(NOT_BEARER);
    }
    Ok(token)
}

/// The first non-empty cookie `name` of all `Cookie` headers (`name=value`
/// pairs separated by `;`, RFC 6265 §4.2; a value may be wrapped in double
/// quotes).
fn cookie<'a>(headers: &'a impl Fields, name: &str) -> Result<Option<&'a str>, PresentationError> {
    for header in headers.all(&COOKIE) {
        for pair in header.split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (found, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            if found != name.as_bytes() {
                continue;
            }
            let value = match value {
                [b'"', inner @ .., b'"'] => inner,
                _ => value,
            };
            if value.is_empty() {
                continue;
            }
            let token = std::str::from_utf8(value)
                .map_err(|_| PresentationError::Malformed("the token cookie is not UTF-8"))?;
            return Ok(Some(token));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
