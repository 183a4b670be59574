//! `GET /herald.js`: the browser module, beside the subscribe path rather
//! than on it: the code a page imports to subscribe, reconnect after the
//! browser gives up, and resume.
//!
//! The file is `web/eventsource/herald.js` (in this crate), the same one the npm package
//! `herald-eventsource` ships, embedded at build time: one copy of the
//! source. It is served whether or not the web UI is on, since pages on
//! other origins import it: module scripts are fetched with CORS, so the
//! answer allows every origin (the code is public and the request carries
//! no credentials), and it is served as `text/javascript`, which browsers
//! require of a module. `Cache-Control: no-cache` with an `ETag` (a hash of
//! the file, computed at build time) lets a browser keep its copy and
//! revalidate it at each load with a `304`, so a hub upgrade never leaves
//! pages running the old module.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the hub serves the module.
pub const BROWSER_MODULE_PATH: &str = "/herald.js";

/// The module's source.
const SOURCE: &str = include_str!("../../web/eventsource/herald.js");

/// FNV-1a (64 bits) of the source: the entity tag changes exactly when
/// the file does. Not a security measure, only a cache key.
const HASH: u64 = fnv1a(SOURCE.as_bytes());

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The entity tag, a quoted string of 16 hex digits.
fn etag() -> String {
    format!("\"{HASH:016x}\"")
}

/// `GET` (and `HEAD`) of [`BROWSER_MODULE_PATH`]: the module, or `304` when the
/// request's `If-None-Match` names the current version.
pub(super) async fn module(headers: HeaderMap) -> Response {
    let etag = etag();
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        // Weak comparison (RFC 9110 §13.1.2): a `W/` prefix still matches.
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SOURCE,
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    // The CORS middleware, when origins are configured, replaces this with
    // the listed origin and credentials for pages it lists.
    out.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_module_is_the_one_the_package_ships() {
        assert!(SOURCE.contains("export class HeraldEventSource"));
        assert!(etag().starts_with('"') && etag().ends_with('"') && etag().len() == 18);
    }
}
