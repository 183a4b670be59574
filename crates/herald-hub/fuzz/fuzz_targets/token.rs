//! Fuzz target for finding a request's token (the `Authorization` header,
//! the two cookies, the draft-07 query parameter) and verifying what is
//! found with both revisions' verifiers.
//!
//! The first byte chooses the protocol and whether there is a query; the
//! rest is split on LF: the query first (when there is one), then header
//! fields `name: value` (fields `http` refuses are skipped, as they could
//! not arrive). Invariants checked:
//! 1. nothing panics;
//! 2. two `Authorization` headers are refused; one is the only place
//!    looked at, and a token found there is one non-empty word of it;
//! 3. a token comes from the query or a cookie only when the hub speaks
//!    that revision, is never empty, and a cookie's is part of a `Cookie`
//!    header; a hub speaking only draft-08 refuses a query token;
//! 4. a token the draft-07 verifier accepts has not expired; one the
//!    access-token verifier accepts is an `at+jwt` of the trusted issuer
//!    that has not expired (leeway included).
#![no_main]

mod common;

use herald_hub::access_token::is_access_token;
use herald_hub::fuzzing::{presented_token, TokenSource};
use herald_hub::{Protocol, Revision};
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let protocol = match flags % 3 {
        0 => Protocol::Both,
        1 => Protocol::Draft07,
        _ => Protocol::Draft08,
    };
    let mut lines = rest.split(|&b| b == b'\n');
    let query = if flags & 4 != 0 {
        lines.next().and_then(|q| std::str::from_utf8(q).ok())
    } else {
        None
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }

    let found = presented_token(&headers, query, protocol);
    let authorization: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
    match (&found, authorization.as_slice()) {
        (Ok(_), [_, _, ..]) => panic!("several Authorization headers accepted: {found:?}"),
        (Ok(None), [_]) => panic!("an Authorization header that is neither a token nor an error"),
        (Ok(Some((token, source))), [value]) => {
            assert_eq!(
                *source,
                TokenSource::Header,
                "another source despite the header"
            );
            assert!(
                !token.is_empty() && !token.contains([' ', '\t']),
                "{token:?}"
            );
            assert!(
                contains(value.as_bytes(), token.as_bytes()),
                "{token:?} not in {value:?}"
            );
        }
        (Ok(Some((token, source))), []) => {
            assert!(!token.is_empty(), "an empty token from {source:?}");
            match source {
                TokenSource::Header => panic!("a header token without the header"),
                TokenSource::Query => {
                    assert!(
                        protocol.speaks(Revision::Draft07),
                        "a query token on a draft-08 hub"
                    );
                    assert!(query.is_some(), "a query token without a query");
                }
                TokenSource::Cookie(revision) => {
                    assert!(
                        protocol.speaks(*revision),
                        "a {revision:?} cookie on a {protocol:?} hub"
                    );
                    assert!(
                        headers
                            .get_all(COOKIE)
                            .iter()
                            .any(|v| contains(v.as_bytes(), token.as_bytes())),
                        "{token:?} is in no Cookie header"
                    );
                }
            }
        }
        _ => {}
    }

    let Ok(Some((token, _))) = found else {
        return;
    };
    if let Ok(claims) = common::jwt_verifier().verify_at(&token, common::NOW) {
        assert!(
            claims.exp.is_none_or(|exp| common::NOW < exp),
            "expired: {claims:?}"
        );
    }
    let access = common::ready(common::access_verifier().verify_at(&token, common::NOW));
    if let Ok(access) = access {
        assert!(is_access_token(&token), "accepted without typ at+jwt");
        assert_eq!(access.issuer, common::ISSUER);
        assert!(
            common::NOW < access.expires + common::LEEWAY,
            "expired: {access:?}"
        );
    }
});
