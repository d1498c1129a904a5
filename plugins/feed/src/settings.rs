//! The job's input: which feed to read and from when, validated up front so a bad value
//! fails the job once with a message naming the field.

use chrono::{DateTime, Utc};
use drowl_plugin_sdk::JobError;
use serde::Deserialize;
use url::Url;

/// drowl's source for entries of feeds on hosts it has no source of its own for
/// (Medium, personal blogs). See [`source_for`].
pub(crate) const GENERIC_SOURCE: &str = "feed";

/// The platforms drowl knows that publish feeds: (host, drowl's source name). A feed
/// on one of these hosts (or a subdomain) is stored under the platform's source, so its
/// entries and authors meet what other connectors of that platform record.
pub(crate) const PLATFORMS: &[(&str, &str)] = &[
    ("dev.to", "dev.to"),
    ("zenn.dev", "zenn"),
    ("qiita.com", "qiita"),
];

/// Every source this plugin may emit, for the manifest.
pub(crate) fn all_sources() -> impl Iterator<Item = &'static str> {
    PLATFORMS
        .iter()
        .map(|(_, s)| *s)
        .chain(std::iter::once(GENERIC_SOURCE))
}

/// The drowl source for a feed at `url`: the platform's for dev.to, Zenn and Qiita,
/// `feed` for everything else. drowl's event sources name no blog platform (Medium,
/// WordPress, a personal site), so those share one source; their external ids are
/// qualified by the feed's URL where they are not globally unique (see `mapping`).
pub(crate) fn source_for(url: &Url) -> &'static str {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    PLATFORMS
        .iter()
        .find(|(h, _)| host == *h || host.ends_with(&format!(".{h}")))
        .map_or(GENERIC_SOURCE, |(_, s)| *s)
}

/// The job's `input` object. Unknown keys (`pluginId`, `source`, ...) are ignored.
#[derive(Debug, Default, Deserialize)]
struct JobInput {
    url: Option<String>,
    since: Option<String>,
}

/// What one job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// The feed's URL.
    pub(crate) url: Url,
    /// Only entries published (or updated) at or after this instant.
    pub(crate) since: Option<DateTime<Utc>>,
}

/// Parses an RFC 3339 timestamp into UTC.
pub(crate) fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Job {
    /// Parses the job input; `request_since` (the host's `since`) wins over the input's.
    /// A malformed input will not improve on retry, so every error here is permanent.
    pub(crate) fn from_input(input: &str, request_since: Option<&str>) -> Result<Self, JobError> {
        let input: JobInput = serde_json::from_str(input).map_err(|e| {
            JobError::permanent(format!(
                "job input must be a JSON object with `url`, the feed's address: {e}"
            ))
        })?;
        let raw = input
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                JobError::permanent(
                    "job input names no `url`: give the feed's address, e.g. {\"url\": \"https://zenn.dev/topics/rust/feed\"}",
                )
            })?;
        let url = Url::parse(raw)
            .map_err(|e| JobError::permanent(format!("`url` is not a URL ({e}): {raw:?}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(JobError::permanent(format!(
                "`url` must be an http(s) URL with a host, got {raw:?}"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(JobError::permanent(
                "`url` must not carry credentials: they would be stored with the job",
            ));
        }
        let since = match request_since.or(input.since.as_deref()) {
            None => None,
            Some(s) => Some(parse_rfc3339(s).ok_or_else(|| {
                JobError::permanent(format!("`since` is not an RFC 3339 timestamp: {s:?}"))
            })?),
        };
        Ok(Self { url, since })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_host() {
        let s = |u: &str| source_for(&Url::parse(u).expect("url"));
        assert_eq!(s("https://dev.to/feed/ben"), "dev.to");
        assert_eq!(s("https://zenn.dev/topics/rust/feed"), "zenn");
        assert_eq!(s("https://qiita.com/tags/rust/feed"), "qiita");
        assert_eq!(s("https://ZENN.dev/x/feed"), "zenn");
        assert_eq!(s("https://medium.com/feed/@someone"), "feed");
        assert_eq!(s("https://blog.example.com/index.xml"), "feed");
        // Not a suffix match on the bare string.
        assert_eq!(s("https://notzenn.dev/feed"), "feed");
        assert_eq!(
            all_sources().collect::<Vec<_>>(),
            ["dev.to", "zenn", "qiita", "feed"]
        );
    }

    #[test]
    fn reads_url_and_since() {
        let j = Job::from_input(
            r#"{"pluginId":"feed","url":"https://zenn.dev/topics/rust/feed","since":"2025-01-01T09:00:00+09:00"}"#,
            None,
        )
        .expect("valid");
        assert_eq!(j.url.as_str(), "https://zenn.dev/topics/rust/feed");
        assert_eq!(j.since, parse_rfc3339("2025-01-01T00:00:00Z"));
        let j = Job::from_input(
            r#"{"url":"https://dev.to/feed","since":"2025-01-01T00:00:00Z"}"#,
            Some("2025-06-01T00:00:00Z"),
        )
        .expect("valid");
        assert_eq!(j.since, parse_rfc3339("2025-06-01T00:00:00Z"));
    }

    #[test]
    fn bad_inputs_are_permanent_and_name_the_field() {
        for (input, field) in [
            ("[]", "`url`"),
            ("{}", "`url`"),
            (r#"{"url":" "}"#, "`url`"),
            (r#"{"url":"zenn.dev/feed"}"#, "`url`"),
            (r#"{"url":"ftp://example.com/feed"}"#, "`url`"),
            (r#"{"url":"https://u:p@example.com/feed"}"#, "`url`"),
            (r#"{"url":42}"#, "`url`"),
            (
                r#"{"url":"https://example.com/feed","since":"last week"}"#,
                "`since`",
            ),
        ] {
            match Job::from_input(input, None) {
                Err(JobError::Permanent(m)) => assert!(m.contains(field), "{input}: {m}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }
}
