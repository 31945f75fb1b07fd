//! The access rules, case by case, and fuzzed: random headers, peers,
//! methods and paths never get past the check without the credential
//! unless an opening the hub was told about admits them.

use proptest::prelude::*;

use super::*;

const TOKEN: &str = "s3cret";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

fn policy(openings: Openings) -> Policy {
    Policy::new(
        &crate::credential::given_token(TOKEN),
        openings,
        &["box.tail.ts.net".into()],
        "127.0.0.1",
    )
}

fn mcp(p: &Policy, peer: &str, pairs: &[(&'static str, &str)]) -> Verdict {
    p.check(
        Some(peer.parse().unwrap()),
        &Method::POST,
        &"/mcp".parse().unwrap(),
        &headers(pairs),
    )
}

const LOCAL: &str = "127.0.0.1:5000";
const REMOTE: &str = "100.64.0.5:5000";
const BEARER: (&str, &str) = ("authorization", "Bearer s3cret");

#[test]
fn the_credential_is_needed_from_everywhere() {
    let p = policy(Openings::default());
    let unauthorized = |v: &Verdict| matches!(v, Verdict::Unauthorized(_));
    // Loopback is no user boundary: no credential, no entry.
    assert!(unauthorized(&mcp(&p, LOCAL, &[("host", "127.0.0.1:8080")])));
    assert!(unauthorized(&mcp(&p, LOCAL, &[("host", "localhost")])));
    assert!(unauthorized(&mcp(&p, LOCAL, &[])));
    assert!(unauthorized(&mcp(&p, REMOTE, &[])));
    assert!(unauthorized(&mcp(
        &p,
        REMOTE,
        &[("authorization", "Bearer nope")]
    )));
    // nginx's default proxy_pass: loopback peer, Host rewritten, no XFF.
    assert!(unauthorized(&mcp(&p, LOCAL, &[("host", "127.0.0.1:8080")])));
    // Caddy-style: XFF added, a client's forged identity passed through.
    assert!(unauthorized(&mcp(
        &p,
        LOCAL,
        &[
            ("host", "box.tail.ts.net"),
            ("x-forwarded-for", "203.0.113.9"),
            ("tailscale-user-login", "me@x")
        ]
    )));
    assert_eq!(
        mcp(&p, LOCAL, &[("host", "127.0.0.1:8080"), BEARER]),
        Verdict::Allow(Access::Local)
    );
    assert_eq!(mcp(&p, LOCAL, &[BEARER]), Verdict::Allow(Access::Local));
    assert_eq!(
        mcp(&p, LOCAL, &[BEARER, ("x-forwarded-for", "203.0.113.9")]),
        Verdict::Allow(Access::Token),
        "forwarded with the credential: admitted, but not as local use"
    );
    assert_eq!(
        mcp(&p, LOCAL, &[BEARER, ("x-real-ip", "203.0.113.9")]),
        Verdict::Allow(Access::Token)
    );
    assert_eq!(mcp(&p, REMOTE, &[BEARER]), Verdict::Allow(Access::Token));
    assert_eq!(
        mcp(&p, REMOTE, &[("authorization", "bearer s3cret")]),
        Verdict::Allow(Access::Token)
    );
}

#[test]
fn health_and_the_page_are_open_but_not_their_data() {
    let p = policy(Openings::default());
    let get = |path: &str, pairs: &[(&'static str, &str)]| {
        p.check(
            Some(LOCAL.parse().unwrap()),
            &Method::GET,
            &path.parse().unwrap(),
            &headers(pairs),
        )
    };
    assert_eq!(get("/health", &[("host", "127.0.0.1")]), Verdict::Public);
    assert_eq!(get("/", &[("host", "127.0.0.1")]), Verdict::Public);
    assert_eq!(get("/", &[]), Verdict::Public);
    assert!(matches!(get("/mcp", &[]), Verdict::Unauthorized(_)));
    assert!(matches!(get("/other", &[]), Verdict::Unauthorized(_)));
    // A rebinding page cannot even read the open paths.
    assert!(matches!(
        get("/health", &[("host", "evil.example")]),
        Verdict::Forbidden(_)
    ));
    assert!(matches!(
        get(
            "/",
            &[("host", "localhost"), ("origin", "https://evil.example")]
        ),
        Verdict::Forbidden(_)
    ));
}

#[test]
fn tailscale_identity_admits_only_when_trusted() {
    let fwd_ts: &[(&str, &str)] = &[
        ("host", "box.tail.ts.net"),
        ("x-forwarded-for", "100.64.0.5"),
        ("tailscale-user-login", "me@x"),
    ];
    let untrusted = policy(Openings::default());
    match mcp(&untrusted, LOCAL, fwd_ts) {
        Verdict::Unauthorized(m) => assert!(m.contains("--trust-tailscale-headers"), "{m}"),
        other => panic!("{other:?}"),
    }
    let trusted = policy(Openings {
        trust_tailscale: true,
        ..Openings::default()
    });
    assert_eq!(
        mcp(&trusted, LOCAL, fwd_ts),
        Verdict::Allow(Access::Forwarded("me@x".into()))
    );
    // Without XFF, without a Host, or from a remote peer: not the
    // `tailscale serve` path.
    for pairs in [
        &[
            ("host", "box.tail.ts.net"),
            ("tailscale-user-login", "me@x"),
        ][..],
        &[
            ("x-forwarded-for", "100.64.0.5"),
            ("tailscale-user-login", "me@x"),
        ][..],
    ] {
        assert!(matches!(
            mcp(&trusted, LOCAL, pairs),
            Verdict::Unauthorized(_)
        ));
    }
    assert!(matches!(
        mcp(&trusted, REMOTE, fwd_ts),
        Verdict::Unauthorized(_)
    ));
    // A name that rebinds to 127.0.0.1 cannot take that path.
    assert!(matches!(
        mcp(
            &trusted,
            LOCAL,
            &[
                ("host", "rebind.test:8080"),
                ("x-forwarded-for", "100.64.0.5"),
                ("tailscale-user-login", "me@x"),
            ]
        ),
        Verdict::Forbidden(_)
    ));
}

#[test]
fn web_pages_and_foreign_hosts_are_refused_even_with_the_token() {
    let p = policy(Openings::default());
    assert!(matches!(
        mcp(&p, LOCAL, &[("host", "evil.example")]),
        Verdict::Forbidden(_)
    ));
    assert!(matches!(
        mcp(&p, REMOTE, &[BEARER, ("origin", "http://rebind.test:8080")]),
        Verdict::Forbidden(_)
    ));
    assert_eq!(
        mcp(
            &p,
            LOCAL,
            &[
                BEARER,
                ("host", "localhost"),
                ("origin", "http://localhost:3000")
            ]
        ),
        Verdict::Allow(Access::Local)
    );
    let absolute: Uri = "http://127.0.0.1/mcp".parse().unwrap();
    assert!(matches!(
        p.check(
            Some(LOCAL.parse().unwrap()),
            &Method::POST,
            &absolute,
            &headers(&[("host", "127.0.0.1"), BEARER])
        ),
        Verdict::BadRequest(_)
    ));
    assert!(matches!(
        mcp(
            &p,
            LOCAL,
            &[("host", "127.0.0.1"), ("host", "evil.example"), BEARER]
        ),
        Verdict::BadRequest(_)
    ));
}

#[test]
fn a_refusal_says_where_the_credential_is_to_a_local_caller_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data.redb");
    let credential = crate::credential::load_or_create(None, &db).unwrap();
    let p = Policy::new(&credential, Openings::default(), &[], "127.0.0.1");
    let file = dir.path().join("token").display().to_string();
    let text = |v: Verdict| match v {
        Verdict::Unauthorized(m) => m,
        other => panic!("{other:?}"),
    };
    let local = text(mcp(&p, LOCAL, &[("host", "127.0.0.1")]));
    assert!(local.contains(&file), "{local}");
    let wrong = text(mcp(&p, LOCAL, &[("authorization", "Bearer nope")]));
    assert!(wrong.starts_with("the credential sent is not"), "{wrong}");
    for remote in [
        text(mcp(&p, REMOTE, &[])),
        text(mcp(&p, LOCAL, &[("x-forwarded-for", "203.0.113.9")])),
    ] {
        assert!(!remote.contains(&file), "{remote}");
        assert!(remote.contains("AGENT_EVENT_BUS_TOKEN"), "{remote}");
    }
    assert!(!local.contains(&credential.token) && !wrong.contains(&credential.token));
}

#[test]
fn no_auth_opens_everything_but_web_pages() {
    let p = policy(Openings {
        no_auth: true,
        ..Openings::default()
    });
    assert_eq!(mcp(&p, REMOTE, &[]), Verdict::Allow(Access::Open));
    assert!(matches!(
        mcp(&p, REMOTE, &[("origin", "https://evil.example")]),
        Verdict::Forbidden(_)
    ));
}

#[test]
fn host_values_are_parsed_strictly() {
    for (value, want) in [
        ("localhost", Some("localhost")),
        ("LocalHost:8080", Some("localhost")),
        ("127.0.0.1:1", Some("127.0.0.1")),
        ("[::1]:8080", Some("::1")),
        ("[::1]", Some("::1")),
        ("box.tail.ts.net", Some("box.tail.ts.net")),
        ("[::1]evil", None),
        ("[::1]:80x", None),
        ("[evil]", None),
        ("a b", None),
        ("host:1:2", None),
        ("host:", None),
        ("", None),
        ("evil.example@127.0.0.1", None),
    ] {
        assert_eq!(parse_host(value).as_deref(), want, "{value:?}");
    }
}

/// A request as the fuzzer makes it: peer, method, path, headers.
type Request = (bool, bool, &'static str, Vec<(&'static str, String)>);

fn request() -> impl Strategy<Value = Request> {
    let name = prop::sample::select(vec![
        "host",
        "origin",
        "authorization",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "tailscale-user-login",
        "cookie",
    ]);
    let value = prop_oneof![
        Just("Bearer s3cret".to_owned()),
        Just("bearer s3cret ".to_owned()),
        Just("Bearer s3cre".to_owned()),
        Just("Bearer s3cret\u{0}".to_owned()),
        Just("localhost".to_owned()),
        Just("127.0.0.1:8080".to_owned()),
        Just("box.tail.ts.net".to_owned()),
        Just("http://localhost:8080".to_owned()),
        Just("https://evil.example".to_owned()),
        Just("me@example.com".to_owned()),
        "[ -~]{0,24}",
    ];
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["/mcp", "/", "/health", "/x", "/mcp/", "//health"]),
        prop::collection::vec((name, value), 0..6),
    )
}

#[test]
fn fuzz_the_access_check_on_random_headers() {
    let strict = policy(Openings::default());
    let trusting = policy(Openings {
        trust_tailscale: true,
        ..Openings::default()
    });
    crate::fuzz::fuzz(
        "access check",
        request(),
        |(loopback, post, path, pairs)| {
            let mut map = HeaderMap::new();
            for (name, value) in &pairs {
                if let Ok(value) = value.parse() {
                    map.append(*name, value);
                }
            }
            let peer: SocketAddr = if loopback { LOCAL } else { REMOTE }.parse().unwrap();
            let method = if post { Method::POST } else { Method::GET };
            let target: Uri = path.parse().unwrap();
            let presented = map
                .get_all("authorization")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| {
                    v.trim()
                        .strip_prefix("Bearer ")
                        .or_else(|| v.trim().strip_prefix("bearer "))
                        .is_some_and(|t| t.trim() == TOKEN)
                });
            let public = !post && matches!(path, "/" | "/health");
            for (p, trusted) in [(&strict, false), (&trusting, true)] {
                let verdict = p.check(Some(peer), &method, &target, &map);
                match &verdict {
                    Verdict::Allow(Access::Local | Access::Token) => {
                        prop_assert!(presented, "admitted without the token: {pairs:?}");
                    }
                    Verdict::Allow(Access::Forwarded(login)) => {
                        prop_assert!(trusted && loopback, "{pairs:?}");
                        prop_assert!(map.contains_key("x-forwarded-for"), "{pairs:?}");
                        prop_assert!(!login.is_empty());
                    }
                    Verdict::Public => prop_assert!(public, "{path} opened: {pairs:?}"),
                    Verdict::Allow(other) => {
                        prop_assert!(false, "{other:?} from {pairs:?}");
                    }
                    Verdict::Unauthorized(m) => prop_assert!(!m.contains(TOKEN)),
                    Verdict::BadRequest(_) | Verdict::Forbidden(_) => {}
                }
                if let Some(origin) = map.get("origin").and_then(|o| o.to_str().ok())
                    && origin.contains("evil.example")
                {
                    prop_assert!(!matches!(verdict, Verdict::Allow(_) | Verdict::Public));
                }
            }
            Ok(())
        },
    );
}
