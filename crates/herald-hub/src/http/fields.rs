//! A request's header fields as the publish path reads them: from an
//! `http::HeaderMap` (a request through the router) or straight from the
//! head the server parsed itself (`server::http1`), which then builds no
//! map, copies no value and allocates nothing.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// Read access to a request's header fields.
pub(crate) trait Fields {
    /// Every value of the field `name`, in the order the request sent them.
    fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]>;

    /// The first value of the field `name`.
    fn first<'a>(&'a self, name: &'a HeaderName) -> Option<&'a [u8]> {
        self.all(name).next()
    }

    /// The first value of the field `name` when it is visible ASCII (what
    /// `HeaderValue::to_str` accepts), else `None`.
    fn text<'a>(&'a self, name: &'a HeaderName) -> Option<&'a str> {
        as_text(self.first(name)?)
    }
}

/// A field value as text when it is visible ASCII or tabs (what
/// `HeaderValue::to_str` accepts), else `None`.
pub(crate) fn as_text(value: &[u8]) -> Option<&str> {
    let visible = value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    if !visible {
        return None;
    }
    std::str::from_utf8(value).ok()
}

impl Fields for HeaderMap {
    fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn text_is_what_header_value_to_str_accepts() {
        for value in [&b"plain"[..], b"tab\there", b"caf\xc3\xa9", b"", b"\x7f"] {
            let Ok(value) = HeaderValue::from_bytes(value) else {
                continue;
            };
            let mut headers = HeaderMap::new();
            headers.insert(header::ORIGIN, value.clone());
            assert_eq!(
                headers.text(&header::ORIGIN),
                value.to_str().ok(),
                "{value:?}"
            );
        }
        assert_eq!(HeaderMap::new().text(&header::ORIGIN), None);
    }

    #[test]
    fn values_come_in_the_order_sent() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let values: Vec<&[u8]> = headers.all(&header::COOKIE).collect();
        assert_eq!(values, [&b"a=1"[..], b"b=2"]);
        assert_eq!(headers.first(&header::COOKIE), Some(&b"a=1"[..]));
    }
}
