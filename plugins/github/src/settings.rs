//! The job's settings: configuration fields and job input, validated up front so a bad
//! value fails the job once with a message naming the key, instead of on every page.

use drowl_plugin_sdk::JobError;
use serde::Deserialize;
use url::Url;

use crate::time::{Timestamp, parse_rfc3339};

/// Where GitHub's REST API lives unless `api-base-url` says otherwise.
pub(crate) const DEFAULT_API_BASE_URL: &str = "https://api.github.com";
/// GitHub's own default page size.
pub(crate) const DEFAULT_PER_PAGE: u32 = 30;
/// The largest page the events API serves.
pub(crate) const MAX_PER_PAGE: u32 = 100;

/// The configuration fields this plugin reads (see the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The API root, without a trailing slash (`https://ghe.example.com/api/v3` works).
    pub(crate) api_base: Url,
    /// Events per page, 1 to 100.
    pub(crate) per_page: u32,
}

fn lookup<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

impl Settings {
    /// Reads `api-base-url` and `per-page` from the request's config (defaults applied
    /// here too, in case a host passes none).
    pub(crate) fn from_config(config: &[(String, String)]) -> Result<Self, JobError> {
        let raw = lookup(config, "api-base-url").unwrap_or(DEFAULT_API_BASE_URL);
        let api_base = Url::parse(raw).map_err(|e| {
            JobError::invalid_config(format!("`api-base-url` is not a URL ({e}): {raw:?}"))
        })?;
        if !matches!(api_base.scheme(), "http" | "https") || api_base.host_str().is_none() {
            return Err(JobError::invalid_config(format!(
                "`api-base-url` must be an http(s) URL with a host, got {raw:?}"
            )));
        }
        if !api_base.username().is_empty() || api_base.password().is_some() {
            return Err(JobError::invalid_config(
                "`api-base-url` must not carry credentials; set `token` instead",
            ));
        }
        if api_base.query().is_some() || api_base.fragment().is_some() {
            return Err(JobError::invalid_config(format!(
                "`api-base-url` must not have a query or fragment, got {raw:?}"
            )));
        }
        let per_page = match lookup(config, "per-page") {
            None => DEFAULT_PER_PAGE,
            Some(v) => parse_per_page(v).ok_or_else(|| {
                JobError::invalid_config(format!(
                    "`per-page` must be a whole number from 1 to {MAX_PER_PAGE}, got {v:?}"
                ))
            })?,
        };
        Ok(Self { api_base, per_page })
    }

    /// The base URL as a string without a trailing slash, ready to append `/users/...`.
    pub(crate) fn base(&self) -> &str {
        self.api_base.as_str().trim_end_matches('/')
    }

    /// Whether `url` is on the configured API's origin (scheme, host and port), the
    /// only place this plugin sends its token or follows links to.
    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.api_base.origin()
    }
}

/// A number field may arrive as `30` or `30.0`; anything else, or out of range, is
/// refused rather than silently clamped.
fn parse_per_page(v: &str) -> Option<u32> {
    let n = v.parse::<u32>().ok().or_else(|| {
        let f = v.parse::<f64>().ok()?;
        (f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f)).then_some(f as u32)
    })?;
    (1..=MAX_PER_PAGE).contains(&n).then_some(n)
}

/// Whose activity to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `GET /users/{user}/events/public`.
    User(String),
    /// `GET /repos/{owner}/{name}/events`.
    Repo {
        /// The owning user or organisation.
        owner: String,
        /// The repository name.
        name: String,
    },
    /// `GET /orgs/{org}/events`.
    Org(String),
}

impl Target {
    /// The API path of the feed, relative to the API base.
    pub(crate) fn path(&self) -> String {
        match self {
            Self::User(u) => format!("/users/{u}/events/public"),
            Self::Repo { owner, name } => format!("/repos/{owner}/{name}/events"),
            Self::Org(o) => format!("/orgs/{o}/events"),
        }
    }

    /// How errors name the target.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::User(u) => format!("user `{u}`"),
            Self::Repo { owner, name } => format!("repository `{owner}/{name}`"),
            Self::Org(o) => format!("organization `{o}`"),
        }
    }
}

/// The job's `input` object. Unknown keys (`pluginId`, ...) are ignored.
#[derive(Debug, Default, Deserialize)]
struct JobInput {
    user: Option<String>,
    repo: Option<String>,
    org: Option<String>,
    since: Option<String>,
}

/// What one job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// The feed.
    pub(crate) target: Target,
    /// Only events at or after this instant.
    pub(crate) since: Option<Timestamp>,
}

/// GitHub logins and organisation names: letters, digits and hyphens (underscores on
/// some GitHub Enterprise servers). Checking keeps the value from changing the path.
fn valid_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_repo_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Job {
    /// Parses the job input; `request_since` (the host's `since`) wins over the input's.
    /// A malformed input will not improve on retry, so every error here is permanent.
    pub(crate) fn from_input(input: &str, request_since: Option<&str>) -> Result<Self, JobError> {
        let input: JobInput = serde_json::from_str(input).map_err(|e| {
            JobError::permanent(format!(
                "job input must be a JSON object with `user`, `repo` or `org`: {e}"
            ))
        })?;
        let target = match (input.user, input.repo, input.org) {
            (Some(u), None, None) if valid_login(&u) => Target::User(u),
            (Some(u), None, None) => {
                return Err(JobError::permanent(format!(
                    "`user` is not a GitHub login: {u:?}"
                )));
            }
            (None, Some(r), None) => match r.split_once('/') {
                Some((owner, name)) if valid_login(owner) && valid_repo_name(name) => {
                    Target::Repo {
                        owner: owner.to_owned(),
                        name: name.to_owned(),
                    }
                }
                _ => {
                    return Err(JobError::permanent(format!(
                        "`repo` must be `owner/name`, got {r:?}"
                    )));
                }
            },
            (None, None, Some(o)) if valid_login(&o) => Target::Org(o),
            (None, None, Some(o)) => {
                return Err(JobError::permanent(format!(
                    "`org` is not a GitHub organization name: {o:?}"
                )));
            }
            _ => {
                return Err(JobError::permanent(
                    "job input must name exactly one of `user`, `repo` or `org`",
                ));
            }
        };
        let since = match request_since.or(input.since.as_deref()) {
            None => None,
            Some(s) => Some(parse_rfc3339(s).ok_or_else(|| {
                JobError::permanent(format!("`since` is not an RFC 3339 timestamp: {s:?}"))
            })?),
        };
        Ok(Self { target, since })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let s = Settings::from_config(&[]).expect("defaults");
        assert_eq!(s.base(), "https://api.github.com");
        assert_eq!(s.per_page, 30);
    }

    #[test]
    fn custom_base_and_page_size() {
        let s = Settings::from_config(&cfg(&[
            ("api-base-url", "http://127.0.0.1:8080/"),
            ("per-page", "100"),
        ]))
        .expect("valid");
        assert_eq!(s.base(), "http://127.0.0.1:8080");
        assert_eq!(s.per_page, 100);
        let ghe =
            Settings::from_config(&cfg(&[("api-base-url", "https://ghe.example.com/api/v3")]))
                .expect("valid");
        assert_eq!(ghe.base(), "https://ghe.example.com/api/v3");
        assert!(ghe.same_origin(&Url::parse("https://ghe.example.com/x").expect("url")));
        assert!(!ghe.same_origin(&Url::parse("http://ghe.example.com/x").expect("url")));
        assert!(!ghe.same_origin(&Url::parse("https://ghe.example.com:8443/x").expect("url")));
        assert_eq!(
            Settings::from_config(&cfg(&[("per-page", "50.0")]))
                .map(|s| s.per_page)
                .ok(),
            Some(50)
        );
    }

    #[test]
    fn invalid_config_names_the_key() {
        for (key, value) in [
            ("per-page", "0"),
            ("per-page", "101"),
            ("per-page", "ten"),
            ("per-page", "2.5"),
            ("api-base-url", "api.github.com"),
            ("api-base-url", "ftp://api.github.com"),
            ("api-base-url", "https://user:pw@api.github.com"),
            ("api-base-url", "https://api.github.com/?x=1"),
        ] {
            match Settings::from_config(&cfg(&[(key, value)])) {
                Err(JobError::InvalidConfig(m)) => assert!(m.contains(key), "{m}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn targets() {
        let j = Job::from_input(r#"{"pluginId":"github","user":"octocat"}"#, None).expect("user");
        assert_eq!(j.target.path(), "/users/octocat/events/public");
        let j = Job::from_input(r#"{"repo":"octocat/Hello-World"}"#, None).expect("repo");
        assert_eq!(j.target.path(), "/repos/octocat/Hello-World/events");
        let j = Job::from_input(r#"{"org":"drowl-dev"}"#, None).expect("org");
        assert_eq!(j.target.path(), "/orgs/drowl-dev/events");
    }

    #[test]
    fn since_from_request_wins_over_input() {
        let j = Job::from_input(
            r#"{"user":"octocat","since":"2025-01-01T00:00:00Z"}"#,
            Some("2025-06-01T00:00:00Z"),
        )
        .expect("valid");
        assert_eq!(j.since, parse_rfc3339("2025-06-01T00:00:00Z"));
        let j = Job::from_input(r#"{"user":"octocat","since":"2025-01-01T00:00:00Z"}"#, None)
            .expect("valid");
        assert_eq!(j.since, parse_rfc3339("2025-01-01T00:00:00Z"));
    }

    #[test]
    fn bad_inputs_are_permanent() {
        for input in [
            "[]",
            "{}",
            r#"{"user":"a","repo":"b/c"}"#,
            r#"{"user":"../admin"}"#,
            r#"{"user":"octo cat"}"#,
            r#"{"repo":"octocat"}"#,
            r#"{"repo":"octocat/.."}"#,
            r#"{"repo":"octocat/a/b"}"#,
            r#"{"org":"x?y"}"#,
            r#"{"user":"octocat","since":"last week"}"#,
            r#"{"user":42}"#,
        ] {
            assert!(
                matches!(Job::from_input(input, None), Err(JobError::Permanent(_))),
                "{input}"
            );
        }
    }
}
