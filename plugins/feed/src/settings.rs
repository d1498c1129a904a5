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

/// Most feeds one job without a `url` may fan out to: the host lets one job enqueue 100
/// follow-ups by default.
pub(crate) const MAX_FEEDS: usize = 100;

/// The `feeds` config field: the feeds a job naming no `url` ingests, and (through the
/// manifest's `{{feeds}}`) the origins this plugin may reach besides dev.to, Zenn and
/// Qiita. URLs are separated by commas or whitespace; the same URL twice counts once.
pub(crate) fn feeds_from_config(config: &[(String, String)]) -> Result<Vec<Url>, JobError> {
    let raw = config
        .iter()
        .find(|(k, _)| k == "feeds")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let mut out: Vec<Url> = Vec::new();
    for entry in raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        let url = Url::parse(entry)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                JobError::invalid_config(format!("`feeds` entry {entry:?} is not an http(s) URL"))
            })?;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    if out.len() > MAX_FEEDS {
        return Err(JobError::invalid_config(format!(
            "`feeds` lists {} feeds; one job fans out to at most {MAX_FEEDS}",
            out.len()
        )));
    }
    Ok(out)
}

/// What a job asks for: one feed, or every configured feed (its input names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Read one feed.
    One(Job),
    /// Enqueue one job per configured feed, each with its own cursor, passing `since`.
    Each {
        /// The configured feeds.
        feeds: Vec<Url>,
        /// The `since` the job asked for, as given.
        since: Option<String>,
    },
}

impl Plan {
    /// Reads the job input and, when it names no `url`, the configured feeds.
    pub(crate) fn from_request(
        input: &str,
        request_since: Option<&str>,
        config: &[(String, String)],
    ) -> Result<Self, JobError> {
        let parsed: JobInput = serde_json::from_str(input).map_err(|e| {
            JobError::permanent(format!(
                "job input must be a JSON object with `url`, the feed's address: {e}"
            ))
        })?;
        if parsed.url.is_some() {
            return Job::from_input(input, request_since).map(Self::One);
        }
        let since = request_since.map(str::to_owned).or(parsed.since);
        if let Some(s) = &since
            && parse_rfc3339(s).is_none()
        {
            return Err(JobError::permanent(format!(
                "`since` is not an RFC 3339 timestamp: {s:?}"
            )));
        }
        let feeds = feeds_from_config(config)?;
        if feeds.is_empty() {
            return Err(JobError::permanent(
                "the job names no `url`, and the plugin's `feeds` config lists none: name one in the job, e.g. {\"url\": \"https://zenn.dev/topics/rust/feed\"}, or set `feeds`",
            ));
        }
        Ok(Self::Each { feeds, since })
    }
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

    fn cfg(feeds: &str) -> Vec<(String, String)> {
        vec![("feeds".to_owned(), feeds.to_owned())]
    }

    #[test]
    fn a_job_naming_no_url_plans_every_configured_feed() {
        let config = cfg(
            "https://zenn.dev/topics/rust/feed,\nhttps://blog.example.com/index.xml https://zenn.dev/topics/rust/feed",
        );
        let plan = Plan::from_request(
            r#"{"pluginId":"feed","source":"zenn","since":"2025-01-01T00:00:00Z"}"#,
            None,
            &config,
        )
        .expect("plan");
        let Plan::Each { feeds, since } = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(
            feeds.iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "https://zenn.dev/topics/rust/feed",
                "https://blog.example.com/index.xml"
            ]
        );
        assert_eq!(since.as_deref(), Some("2025-01-01T00:00:00Z"));
        let one =
            Plan::from_request(r#"{"url":"https://dev.to/feed"}"#, None, &config).expect("one");
        assert!(matches!(one, Plan::One(ref j) if j.url.as_str() == "https://dev.to/feed"));

        let none = Plan::from_request("{}", None, &[]).unwrap_err();
        assert!(
            format!("{none:?}").contains("`feeds` config lists none"),
            "{none:?}"
        );
        let bad = Plan::from_request("{}", None, &cfg("https://ok.example/feed, zenn.dev/feed"))
            .unwrap_err();
        assert!(
            matches!(bad, JobError::InvalidConfig(ref m) if m.contains("`feeds` entry \"zenn.dev/feed\"")),
            "{bad:?}"
        );
        let since = Plan::from_request(r#"{"since":"soon"}"#, None, &config).unwrap_err();
        assert!(format!("{since:?}").contains("`since`"), "{since:?}");
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
