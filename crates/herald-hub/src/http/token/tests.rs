use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn find(
    pairs: &[(&str, &str)],
    query: Option<&str>,
) -> Result<Option<(String, TokenSource)>, PresentationError> {
    find_for(pairs, query, Protocol::Both)
}

fn find_for(
    pairs: &[(&str, &str)],
    query: Option<&str>,
    protocol: Protocol,
) -> Result<Option<(String, TokenSource)>, PresentationError> {
    presented_token(&headers(pairs), query, protocol)
        .map(|found| found.map(|p| (p.token.into_owned(), p.source)))
}

fn some(
    token: &str,
    source: TokenSource,
) -> Result<Option<(String, TokenSource)>, PresentationError> {
    Ok(Some((token.to_owned(), source)))
}

#[test]
fn token_from_authorization_header() {
    assert_eq!(
        find(&[("authorization", "Bearer abc.def.ghi")], None),
        some("abc.def.ghi", TokenSource::Header)
    );
    // draft-08 §Authorization HTTP Header: the scheme is case-insensitive.
    assert_eq!(
        find(&[("authorization", "bearer   abc ")], None),
        some("abc", TokenSource::Header)
    );
}

#[test]
fn authorization_header_must_be_bearer() {
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "abc.def.ghi",
        "Bearer a b",
        "Bearerabc",
    ] {
        assert!(
            find(&[("authorization", value)], None).is_err(),
            "{value:?}"
        );
    }
    let two = [("authorization", "Bearer a"), ("authorization", "Bearer b")];
    assert!(find(&two, None).is_err());
    // A bad header is an error even when a query token is present.
    assert!(find(&[("authorization", "Basic x")], Some("authorization=t")).is_err());
    // RFC 6750 §3.1: another scheme is no token at all (401, no error
    // code); a broken Bearer header is a malformed request.
    assert_eq!(
        find(&[("authorization", "Basic dXNlcjpwYXNz")], None),
        Err(PresentationError::OtherScheme)
    );
    assert!(matches!(
        find(&[("authorization", "Bearer a b")], None),
        Err(PresentationError::Malformed(_))
    ));
}

#[test]
fn token_from_query_parameter_is_form_decoded() {
    assert_eq!(
        find(
            &[],
            Some("topic=x&authorization=a%2Eb.c&authorization=second")
        ),
        some("a.b.c", TokenSource::Query)
    );
    assert_eq!(
        find(&[], Some("authorization=a+b")),
        some("a b", TokenSource::Query),
        "form encoding: `+` is a space"
    );
    assert_eq!(
        find(&[], Some("%61uthorization=t")),
        some("t", TokenSource::Query)
    );
    assert_eq!(
        find(&[], Some("Authorization=t")),
        Ok(None),
        "names are case-sensitive"
    );
    assert_eq!(find(&[], Some("authorization=")), Ok(None));
    assert_eq!(find(&[], Some("authorization")), Ok(None));
    assert_eq!(find(&[], Some("")), Ok(None));
    assert!(find(&[], Some("authorization=%FF")).is_err());
}

#[test]
fn draft08_only_hub_refuses_a_token_in_the_query_string() {
    // draft-08 §Presenting the Access Token: no token in the URI query.
    let refused = find_for(&[], Some("match=a&authorization=t"), Protocol::Draft08);
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("query string or a QUERY body"),
        "the refusal says where the token may go"
    );
    assert_eq!(
        find_for(&[], Some("authorization=t"), Protocol::Draft07),
        some("t", TokenSource::Query)
    );
}

#[test]
fn token_from_either_cookie_among_several() {
    assert_eq!(
        find(
            &[("cookie", "theme=dark; mercureAuthorization=a.b.c; other=1")],
            None
        ),
        some("a.b.c", TokenSource::Cookie(Revision::Draft07))
    );
    assert_eq!(
        find(
            &[("cookie", "a=1; __Secure-mercure_access_token=s.t.u")],
            None
        ),
        some("s.t.u", TokenSource::Cookie(Revision::Draft08))
    );
    let spread = [
        ("cookie", "a=1;b=2"),
        ("cookie", " mercureAuthorization = \"x.y.z\" ;c=3"),
    ];
    assert_eq!(
        find(&spread, None),
        some("x.y.z", TokenSource::Cookie(Revision::Draft07))
    );
    let lookalikes = [(
        "cookie",
        "xmercureAuthorization=no; mercureAuthorizationx=no; mercureauthorization=no; __secure-mercure_access_token=no",
    )];
    assert_eq!(find(&lookalikes, None), Ok(None));
    let empty_first = [("cookie", "mercureAuthorization=; mercureAuthorization=t")];
    assert_eq!(
        find(&empty_first, None),
        some("t", TokenSource::Cookie(Revision::Draft07))
    );
    let junk = [("cookie", ";;novalue; =x; mercureAuthorization")];
    assert_eq!(find(&junk, None), Ok(None));
}

#[test]
fn each_cookie_counts_only_where_its_revision_is_spoken() {
    let both = [(
        "cookie",
        "mercureAuthorization=old; __Secure-mercure_access_token=new",
    )];
    assert_eq!(
        find(&both, None),
        some("new", TokenSource::Cookie(Revision::Draft08))
    );
    assert_eq!(
        find_for(&both, None, Protocol::Draft07),
        some("old", TokenSource::Cookie(Revision::Draft07))
    );
    let old_only = [("cookie", "mercureAuthorization=old")];
    assert_eq!(find_for(&old_only, None, Protocol::Draft08), Ok(None));
}

#[test]
fn sources_are_tried_header_then_query_then_cookie() {
    // draft-08 §Presenting the Access Token: with an Authorization header,
    // its token is used and the cookie ignored.
    let cookie = ("cookie", "__Secure-mercure_access_token=from-cookie");
    let header = ("authorization", "Bearer from-header");
    let query = Some("authorization=from-query");
    assert_eq!(
        find(&[cookie, header], query),
        some("from-header", TokenSource::Header)
    );
    assert_eq!(
        find(&[cookie], query),
        some("from-query", TokenSource::Query)
    );
    assert_eq!(
        find(&[cookie], Some("authorization=")),
        some("from-cookie", TokenSource::Cookie(Revision::Draft08))
    );
    assert_eq!(find(&[], None), Ok(None));
    assert_eq!(find(&[("x-other", "Bearer t")], Some("topic=a")), Ok(None));
}

#[test]
fn an_access_token_in_the_query_string_is_refused_on_every_hub() {
    // draft-08 §Security Considerations: access tokens MUST NOT be passed
    // in URLs; a draft-07 token there stays accepted for draft-07 clients.
    let access = "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.e30.c2ln";
    let draft07 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.c2ln";
    for protocol in [Protocol::Both, Protocol::Draft08] {
        let refused = find_for(&[], Some(&format!("authorization={access}")), protocol);
        assert!(
            matches!(refused, Err(PresentationError::Malformed(_))),
            "{protocol:?}: {refused:?}"
        );
    }
    assert!(find_for(
        &[],
        Some(&format!("authorization={access}")),
        Protocol::Both
    )
    .unwrap_err()
    .to_string()
    .contains("Authorization header"));
    assert_eq!(
        find(&[], Some(&format!("authorization={draft07}"))),
        some(draft07, TokenSource::Query)
    );
}
