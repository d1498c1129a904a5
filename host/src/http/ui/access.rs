//! Who may open the dashboard, and which form posts it accepts.
//!
//! - Without `--ui-token`: requests from loopback only (the peer address, IPv4-mapped
//!   IPv6 included), and only under a loopback `Host` (`localhost`, `127.0.0.1`,
//!   `[::1]`), so a web page whose own domain resolves to 127.0.0.1 (DNS rebinding)
//!   cannot read the dashboard from the operator's browser.
//! - With `--ui-token`: the token from everyone, loopback included, as `Authorization:
//!   Bearer TOKEN` or the `drowl_ui_token` cookie, which opening `/ui?token=TOKEN` once
//!   sets (`HttpOnly`, `SameSite=Strict`, path `/ui`) before redirecting to the same page
//!   without the token in its address. Compared in constant time.
//! - A state-changing request (the retry form) also carries the daemon's CSRF token, a
//!   random value made at start that only a page of the dashboard can read, and must not
//!   come from another site (`Sec-Fetch-Site`, `Origin` against `Host`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::pages;

/// The cookie that carries the token after `/ui?token=…`.
pub(super) const TOKEN_COOKIE: &str = "drowl_ui_token";

/// The dashboard's secrets: the operator's token, if any, and the CSRF token.
pub struct UiAccess {
    token: Option<String>,
    csrf: String,
}

impl std::fmt::Debug for UiAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiAccess")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// What [`UiAccess::check`] decided about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// The right token came in the address: set the cookie and send the browser to
    /// this address without the token.
    SetCookie {
        /// Where to go: the same path and query, less `token`.
        location: String,
    },
    /// Refuse it, saying why and what to do.
    Deny(StatusCode, String),
}

fn equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl UiAccess {
    /// Access with `token` required when given (loopback only otherwise), and a fresh
    /// random CSRF token.
    pub fn new(token: Option<String>) -> Self {
        let csrf = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self { token, csrf }
    }

    /// Whether a token is required.
    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// The CSRF token forms carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's CSRF token is this daemon's.
    pub fn csrf_matches(&self, sent: Option<&str>) -> bool {
        sent.is_some_and(|s| equal(s, &self.csrf))
    }

    /// Decides whether a request may see the dashboard (see the module docs). `peer` is
    /// `None` when the server was not started with connection info: refused, as its
    /// origin is unknown.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Verdict {
        let Some(token) = &self.token else {
            return loopback_only(headers, peer);
        };
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "))
            .any(|v| equal(v.trim(), token));
        if bearer || cookies(headers).any(|(k, v)| k == TOKEN_COOKIE && equal(v, token)) {
            return Verdict::Allow;
        }
        let pairs: Vec<(String, String)> = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let in_query = pairs.iter().any(|(k, v)| k == "token" && equal(v, token));
        if in_query && method == Method::GET {
            let rest: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "token").collect();
            let mut location = path.to_owned();
            if !rest.is_empty() {
                location.push('?');
                location.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(rest)
                        .finish(),
                );
            }
            return Verdict::SetCookie { location };
        }
        Verdict::Deny(
            StatusCode::UNAUTHORIZED,
            "this dashboard needs its token (serve --ui-token): open /ui?token=TOKEN once \
             in this browser (a cookie keeps it), or send Authorization: Bearer TOKEN"
                .to_owned(),
        )
    }
}

/// Loopback peers under a loopback `Host`.
fn loopback_only(headers: &HeaderMap, peer: Option<SocketAddr>) -> Verdict {
    let from_loopback = peer.is_some_and(|p| p.ip().to_canonical().is_loopback());
    if !from_loopback {
        return Verdict::Deny(
            StatusCode::FORBIDDEN,
            "the dashboard answers requests from this machine only: open it here (or \
             through an SSH tunnel), or start serve with --ui-token (DROWL_UI_TOKEN) to \
             open it to others with a token"
                .to_owned(),
        );
    }
    match headers.get(header::HOST).map(|h| h.to_str()) {
        None => Verdict::Allow,
        Some(Ok(host)) if loopback_host(host) => Verdict::Allow,
        Some(host) => Verdict::Deny(
            StatusCode::FORBIDDEN,
            format!(
                "the dashboard is opened by a loopback name, not {}: use http://127.0.0.1:PORT/ui \
                 or http://localhost:PORT/ui (or start serve with --ui-token to use other names)",
                host.unwrap_or("a Host that is not text")
            ),
        ),
    }
}

/// `localhost`, a loopback IP address, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The `name=value` pairs of every `Cookie` header.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// Refuses a form post another site sent: `Sec-Fetch-Site` other than `same-origin` (or
/// `none`, typed by the user), or an `Origin` other than this `Host`.
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
        && site != "none"
    {
        return Err(format!(
            "refused: the form was sent from another site (Sec-Fetch-Site: {site})"
        ));
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or_default();
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
        if !same {
            return Err(format!(
                "refused: the form was sent from {origin}, not from this dashboard ({host})"
            ));
        }
    }
    Ok(())
}

/// The middleware in front of every dashboard route.
pub(super) async fn guard(
    State(access): State<Arc<UiAccess>>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let verdict = access.check(
        req.method(),
        req.uri().path(),
        req.uri().query(),
        req.headers(),
        peer,
    );
    match verdict {
        Verdict::Allow => next.run(req).await,
        Verdict::SetCookie { location } => {
            let token = access.token.as_deref().unwrap_or_default();
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, location),
                    (
                        header::SET_COOKIE,
                        format!("{TOKEN_COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict"),
                    ),
                ],
            )
                .into_response()
        }
        Verdict::Deny(code, message) => pages::refusal(code, &message),
    }
}

/// Checks `--ui-token`: 16 to 256 characters that a cookie and a header carry as they
/// are.
pub fn parse_token(s: &str) -> Result<String, String> {
    let ok = (16..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(
            "must be 16 to 256 characters of A-Z a-z 0-9 - . _ ~ + / =, e.g. the output of \
             `openssl rand -hex 32`"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TOKEN: &str = "0123456789abcdef-token";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 40_000))
    }

    fn get(access: &UiAccess, query: Option<&str>, h: &HeaderMap, from: &str) -> Verdict {
        access.check(&Method::GET, "/ui", query, h, peer(from))
    }

    #[test]
    fn without_a_token_only_loopback_under_a_loopback_name_gets_in() {
        let a = UiAccess::new(None);
        let local = headers(&[("host", "127.0.0.1:3002")]);
        assert_eq!(get(&a, None, &local, "127.0.0.1"), Verdict::Allow);
        assert_eq!(get(&a, None, &local, "127.8.9.10"), Verdict::Allow);
        assert_eq!(get(&a, None, &local, "::1"), Verdict::Allow);
        assert_eq!(get(&a, None, &local, "::ffff:127.0.0.1"), Verdict::Allow);
        for host in ["localhost:3002", "LOCALHOST", "[::1]:3002", "127.0.0.1"] {
            let h = headers(&[("host", host)]);
            assert_eq!(get(&a, None, &h, "127.0.0.1"), Verdict::Allow, "{host}");
        }
        for from in ["10.0.0.7", "192.168.1.2", "::ffff:10.0.0.7", "2001:db8::1"] {
            let Verdict::Deny(code, message) = get(&a, None, &local, from) else {
                panic!("{from} must be refused");
            };
            assert_eq!(code, StatusCode::FORBIDDEN);
            assert!(message.contains("--ui-token"), "{message}");
        }
        // DNS rebinding: a page of evil.example resolving to 127.0.0.1.
        let rebound = headers(&[("host", "evil.example:3002")]);
        let Verdict::Deny(code, message) = get(&a, None, &rebound, "127.0.0.1") else {
            panic!("a foreign Host must be refused");
        };
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(message.contains("evil.example:3002"), "{message}");
        // Unknown peer (no connection info): refused.
        assert!(matches!(
            a.check(&Method::GET, "/ui", None, &local, None),
            Verdict::Deny(StatusCode::FORBIDDEN, _)
        ));
        // A token in the address means nothing when none is configured.
        assert!(matches!(
            get(&a, Some("token=whatever-long-token"), &local, "10.0.0.7"),
            Verdict::Deny(..)
        ));
    }

    #[test]
    fn with_a_token_it_is_required_from_everyone() {
        let a = UiAccess::new(Some(TOKEN.to_owned()));
        let none = headers(&[("host", "drowl.internal:3002")]);
        for from in ["127.0.0.1", "10.0.0.7"] {
            assert!(
                matches!(
                    get(&a, None, &none, from),
                    Verdict::Deny(StatusCode::UNAUTHORIZED, _)
                ),
                "{from}"
            );
        }
        let bearer = headers(&[("authorization", &format!("Bearer {TOKEN}"))]);
        assert_eq!(get(&a, None, &bearer, "10.0.0.7"), Verdict::Allow);
        let cookie = headers(&[("cookie", &format!("theme=dark; {TOKEN_COOKIE}={TOKEN}"))]);
        assert_eq!(get(&a, None, &cookie, "10.0.0.7"), Verdict::Allow);
        for wrong in [
            headers(&[("authorization", "Bearer 0123456789abcdef-tokeN")]),
            headers(&[("authorization", &format!("Basic {TOKEN}"))]),
            headers(&[("cookie", &format!("{TOKEN_COOKIE}={TOKEN}x"))]),
            headers(&[("cookie", &format!("other={TOKEN}"))]),
        ] {
            assert!(
                matches!(
                    get(&a, None, &wrong, "127.0.0.1"),
                    Verdict::Deny(StatusCode::UNAUTHORIZED, _)
                ),
                "{wrong:?}"
            );
        }
        // The token in the address sets the cookie and leaves the address.
        assert_eq!(
            get(&a, Some(&format!("token={TOKEN}")), &none, "10.0.0.7"),
            Verdict::SetCookie {
                location: "/ui".to_owned()
            }
        );
        assert_eq!(
            get(
                &a,
                Some(&format!("retried=7&token={TOKEN}")),
                &none,
                "10.0.0.7"
            ),
            Verdict::SetCookie {
                location: "/ui?retried=7".to_owned()
            }
        );
        assert!(matches!(
            get(&a, Some("token=wrong-token-0123456"), &none, "10.0.0.7"),
            Verdict::Deny(StatusCode::UNAUTHORIZED, _)
        ));
        // Never for a POST: a link cannot make the browser post with the token.
        assert!(matches!(
            a.check(
                &Method::POST,
                "/ui",
                Some(&format!("token={TOKEN}")),
                &none,
                peer("10.0.0.7")
            ),
            Verdict::Deny(StatusCode::UNAUTHORIZED, _)
        ));
    }

    #[test]
    fn csrf_and_origin_checks() {
        let a = UiAccess::new(None);
        let b = UiAccess::new(None);
        assert_ne!(a.csrf(), b.csrf(), "random per daemon");
        assert_eq!(a.csrf().len(), 64);
        assert!(a.csrf_matches(Some(a.csrf())));
        assert!(!a.csrf_matches(Some(b.csrf())));
        assert!(!a.csrf_matches(Some("")));
        assert!(!a.csrf_matches(None));

        let host = ("host", "127.0.0.1:3002");
        assert_eq!(same_origin(&headers(&[host])), Ok(()));
        assert_eq!(
            same_origin(&headers(&[
                host,
                ("origin", "http://127.0.0.1:3002"),
                ("sec-fetch-site", "same-origin")
            ])),
            Ok(())
        );
        for bad in [
            headers(&[host, ("origin", "http://evil.example")]),
            headers(&[host, ("origin", "null")]),
            headers(&[host, ("origin", "http://127.0.0.1:3003")]),
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
        ] {
            assert!(same_origin(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_must_be_long_and_cookie_safe() {
        assert_eq!(parse_token(TOKEN).as_deref(), Ok(TOKEN));
        for bad in [
            "short",
            "has space in it 0123",
            "semi;colon-0123456789",
            &"x".repeat(257),
        ] {
            let e = parse_token(bad).expect_err(bad);
            assert!(e.contains("openssl rand -hex 32"), "{e}");
        }
    }
}
