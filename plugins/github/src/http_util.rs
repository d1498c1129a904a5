//! Reading GitHub's HTTP responses: `Link` headers and failure statuses.

use drowl_plugin_sdk::JobError;
use drowl_plugin_sdk::http::Response;

use crate::settings::Target;
use crate::time::parse_http_date;

/// The URL of the link with relation `rel` in a `Link` header (RFC 8288), e.g.
/// `<https://api.github.com/...&page=2>; rel="next", <...&page=4>; rel="last"`.
///
/// Hand-written on purpose. `parse_link_header` strips every quote and space and splits
/// on every comma, so it loses a URL with a comma and a multi-token `rel="prev first"`
/// (both tested below), and brings regex into the component; `http-link`, which parses
/// them, has had no release since 2021 and resolves the URL itself, so an invalid next
/// URL would read as "no next page" instead of the sweep's "invalid URL" error. The URL
/// is returned as written and joined to the page URL by the caller.
pub(crate) fn link_with_rel(header: &str, rel: &str) -> Option<String> {
    // Split on commas outside `<...>`: a URL may itself contain commas.
    let mut parts = Vec::new();
    let mut depth = false;
    let mut start = 0;
    for (i, c) in header.char_indices() {
        match c {
            '<' => depth = true,
            '>' => depth = false,
            ',' if !depth => {
                parts.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&header[start..]);
    parts.into_iter().find_map(|part| {
        let part = part.trim();
        let rest = part.strip_prefix('<')?;
        let (url, params) = rest.split_once('>')?;
        let matches = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
        });
        matches.then(|| url.trim().to_owned())
    })
}

/// How long to wait after a rate-limited response, in milliseconds.
///
/// `Retry-After` (seconds) wins, as GitHub asks for secondary rate limits; otherwise an
/// exhausted primary limit resets at `x-ratelimit-reset` (epoch seconds), measured from
/// the response's own `Date` so the plugin needs no clock. A second is added so the
/// retry lands after the reset, and the wait is kept between 1 s and 1 h.
pub(crate) fn rate_limit_delay_ms(resp: &Response) -> u64 {
    const FALLBACK_MS: u64 = 60_000;
    if let Some(secs) = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return secs.clamp(1, 3_600) * 1_000;
    }
    let reset = resp
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok());
    let now = resp.header("date").and_then(parse_http_date);
    match (reset, now) {
        (Some(reset), Some(now)) => {
            let wait = (reset - now + 1).clamp(1, 3_600);
            u64::try_from(wait).unwrap_or(60) * 1_000
        }
        _ => FALLBACK_MS,
    }
}

/// Maps a non-success response to the queue's error kinds, with GitHub's meaning:
/// 401 is a bad `token` (config), 403/429 with an exhausted limit or a `Retry-After`
/// are rate limits, 404 means the target does not exist (or is private), 5xx is
/// retryable and anything else is permanent.
pub(crate) fn check_status(resp: Response, target: &Target) -> Result<Response, JobError> {
    let status = resp.status;
    if resp.is_success() {
        return Ok(resp);
    }
    let exhausted = resp.header("x-ratelimit-remaining").map(str::trim) == Some("0");
    let has_retry_after = resp.header("retry-after").is_some();
    match status {
        401 => Err(JobError::invalid_config(
            "GitHub rejected the credentials (HTTP 401): check config `token`",
        )),
        404 => Err(JobError::permanent(format!(
            "GitHub {} not found (HTTP 404): it does not exist or is not public",
            target.describe()
        ))),
        403 | 429 if exhausted || has_retry_after || status == 429 => {
            let delay_ms = rate_limit_delay_ms(&resp);
            Err(JobError::rate_limited(
                format!(
                    "GitHub rate limit reached for {} (HTTP {status}); retry in {} s",
                    target.describe(),
                    delay_ms / 1_000
                ),
                delay_ms,
            ))
        }
        300..=399 => Err(JobError::permanent(format!(
            "GitHub answered HTTP {status} for {} without a usable redirect",
            target.describe()
        ))),
        // 5xx retryable (honouring Retry-After), other 4xx permanent, with the body's
        // start in the message.
        _ => resp.error_for_status(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: br#"{"message":"x"}"#.to_vec(),
        }
    }

    fn user() -> Target {
        Target::User("octocat".to_owned())
    }

    #[test]
    fn parses_github_link_headers() {
        let h = r#"<https://api.github.com/user/583231/events/public?per_page=30&page=2>; rel="next", <https://api.github.com/user/583231/events/public?per_page=30&page=3>; rel="last""#;
        assert_eq!(
            link_with_rel(h, "next").as_deref(),
            Some("https://api.github.com/user/583231/events/public?per_page=30&page=2")
        );
        assert_eq!(
            link_with_rel(h, "last").as_deref(),
            Some("https://api.github.com/user/583231/events/public?per_page=30&page=3")
        );
        assert_eq!(link_with_rel(h, "prev"), None);
        let h = r#"<https://x/?a=1,2>; rel="prev first", <https://x/?p=3>;rel=next"#;
        assert_eq!(link_with_rel(h, "next").as_deref(), Some("https://x/?p=3"));
        assert_eq!(
            link_with_rel(h, "first").as_deref(),
            Some("https://x/?a=1,2")
        );
        // A member that is not a link does not hide the others.
        let h = r#"garbage, <https://x/?p=2>; rel="next""#;
        assert_eq!(link_with_rel(h, "next").as_deref(), Some("https://x/?p=2"));
        assert_eq!(link_with_rel("", "next"), None);
        assert_eq!(link_with_rel("garbage", "next"), None);
    }

    #[test]
    fn primary_rate_limit_waits_until_reset() {
        let r = resp(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1763630103"),
                ("date", "Thu, 20 Nov 2025 09:14:03 GMT"),
            ],
        );
        match check_status(r, &user()) {
            Err(JobError::RateLimited(i)) => assert_eq!(i.retry_after_ms, Some(61_000)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secondary_rate_limit_honours_retry_after() {
        for status in [403, 429] {
            match check_status(resp(status, &[("Retry-After", "30")]), &user()) {
                Err(JobError::RateLimited(i)) => assert_eq!(i.retry_after_ms, Some(30_000)),
                other => panic!("{other:?}"),
            }
        }
        match check_status(resp(429, &[]), &user()) {
            Err(JobError::RateLimited(i)) => assert_eq!(i.retry_after_ms, Some(60_000)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_statuses() {
        assert!(check_status(resp(200, &[]), &user()).is_ok());
        assert!(matches!(
            check_status(resp(500, &[]), &user()),
            Err(JobError::Retryable(_))
        ));
        assert!(matches!(
            check_status(resp(503, &[]), &user()),
            Err(JobError::Retryable(_))
        ));
        assert!(matches!(
            check_status(resp(401, &[]), &user()),
            Err(JobError::InvalidConfig(_))
        ));
        assert!(matches!(
            check_status(resp(403, &[]), &user()),
            Err(JobError::Permanent(_))
        ));
        assert!(matches!(
            check_status(resp(422, &[]), &user()),
            Err(JobError::Permanent(_))
        ));
        match check_status(
            resp(404, &[]),
            &Target::Repo {
                owner: "o".into(),
                name: "n".into(),
            },
        ) {
            Err(JobError::Permanent(m)) => {
                assert!(m.contains("GitHub repository `o/n` not found"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
