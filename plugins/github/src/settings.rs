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

/// Most targets one job without a target may fan out to: the host lets one job enqueue
/// 100 follow-ups by default.
pub(crate) const MAX_TARGETS: usize = 100;

impl Target {
    /// Parses one entry of the `targets` config field: `users/NAME`, `orgs/NAME` or
    /// `repos/OWNER/NAME` (the paths of GitHub's own URLs).
    pub(crate) fn from_config_entry(entry: &str) -> Result<Self, JobError> {
        let bad = || {
            JobError::invalid_config(format!(
                "`targets` entry {entry:?} is not `users/NAME`, `orgs/NAME` or `repos/OWNER/NAME`"
            ))
        };
        let parts: Vec<&str> = entry.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["users", u] if valid_login(u) => Ok(Self::User((*u).to_owned())),
            ["orgs", o] if valid_login(o) => Ok(Self::Org((*o).to_owned())),
            ["repos", owner, name] if valid_login(owner) && valid_repo_name(name) => {
                Ok(Self::Repo {
                    owner: (*owner).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(bad()),
        }
    }

    /// The job input that names this target, as a job naming it directly would.
    pub(crate) fn input_key(&self) -> (&'static str, String) {
        match self {
            Self::User(u) => ("user", u.clone()),
            Self::Repo { owner, name } => ("repo", format!("{owner}/{name}")),
            Self::Org(o) => ("org", o.clone()),
        }
    }
}

/// The `targets` config field: what a job naming no target ingests. Entries are separated
/// by commas, whitespace or new lines; the same target twice counts once.
pub(crate) fn targets_from_config(config: &[(String, String)]) -> Result<Vec<Target>, JobError> {
    let mut out: Vec<Target> = Vec::new();
    for entry in lookup(config, "targets")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        let t = Target::from_config_entry(entry)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > MAX_TARGETS {
        return Err(JobError::invalid_config(format!(
            "`targets` lists {} targets; one job fans out to at most {MAX_TARGETS}",
            out.len()
        )));
    }
    Ok(out)
}

/// What a job asks for: one target, or every configured target (its input names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Ingest one target, page by page.
    One(Job),
    /// Enqueue one job per configured target, each with its own cursor, passing `since`.
    Each {
        /// The configured targets.
        targets: Vec<Target>,
        /// The `since` the job asked for, as given.
        since: Option<String>,
    },
}

impl Plan {
    /// Reads the job input and, when it names no target, the configured targets.
    pub(crate) fn from_request(
        input: &str,
        request_since: Option<&str>,
        config: &[(String, String)],
    ) -> Result<Self, JobError> {
        let parsed: JobInput = serde_json::from_str(input).unwrap_or_default();
        if parsed.user.is_some() || parsed.repo.is_some() || parsed.org.is_some() {
            return Job::from_input(input, request_since).map(Self::One);
        }
        // Validate the input as a whole first (a malformed `since`, a non-object input).
        let since = request_since.map(str::to_owned).or(parsed.since);
        if let Some(s) = &since
            && parse_rfc3339(s).is_none()
        {
            return Err(JobError::permanent(format!(
                "`since` is not an RFC 3339 timestamp: {s:?}"
            )));
        }
        serde_json::from_str::<JobInput>(input).map_err(|e| {
            JobError::permanent(format!(
                "job input must be a JSON object with `user`, `repo` or `org`: {e}"
            ))
        })?;
        let targets = targets_from_config(config)?;
        if targets.is_empty() {
            return Err(JobError::permanent(
                "the job names no `user`, `repo` or `org`, and the plugin's `targets` config lists none: name one in the job, or set `targets` (e.g. `users/octocat, orgs/drowl-dev, repos/octocat/Hello-World`)",
            ));
        }
        Ok(Self::Each { targets, since })
    }
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

    #[test]
    fn a_job_naming_no_target_plans_every_configured_one() {
        let config = cfg(&[(
            "targets",
            "users/octocat, orgs/drowl-dev\nrepos/octocat/Hello-World users/octocat",
        )]);
        let plan = Plan::from_request(
            r#"{"pluginId":"github-plugin","source":"github","since":"2024-01-01T00:00:00Z"}"#,
            None,
            &config,
        )
        .unwrap();
        assert_eq!(
            plan,
            Plan::Each {
                targets: vec![
                    Target::User("octocat".into()),
                    Target::Org("drowl-dev".into()),
                    Target::Repo {
                        owner: "octocat".into(),
                        name: "Hello-World".into()
                    },
                ],
                since: Some("2024-01-01T00:00:00Z".into()),
            }
        );
        // A job naming one target still ingests only it.
        let one = Plan::from_request(r#"{"user":"mona"}"#, None, &config).unwrap();
        assert!(matches!(one, Plan::One(Job { target: Target::User(ref u), .. }) if u == "mona"));
    }

    #[test]
    fn targets_and_missing_targets_fail_naming_what_to_set() {
        let none = Plan::from_request(r#"{"source":"github"}"#, None, &[]).unwrap_err();
        assert!(
            format!("{none:?}").contains("`targets` config lists none"),
            "{none:?}"
        );
        let bad = Plan::from_request("{}", None, &cfg(&[("targets", "users/octocat, octocat")]))
            .unwrap_err();
        let bad = format!("{bad:?}");
        assert!(
            bad.contains("`targets` entry") && bad.contains("octocat"),
            "{bad}"
        );
        assert!(bad.contains("is not `users/NAME`"), "{bad}");
        let traversal = Plan::from_request("{}", None, &cfg(&[("targets", "repos/a/../../admin")]))
            .unwrap_err();
        assert!(format!("{traversal:?}").contains("is not"), "{traversal:?}");
        let since = Plan::from_request(
            r#"{"since":"yesterday"}"#,
            None,
            &cfg(&[("targets", "users/octocat")]),
        )
        .unwrap_err();
        assert!(
            format!("{since:?}").contains("`since` is not an RFC 3339"),
            "{since:?}"
        );
        let many: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("users/u{i}")).collect();
        let over = targets_from_config(&cfg(&[("targets", &many.join(","))])).unwrap_err();
        assert!(format!("{over:?}").contains("at most 100"), "{over:?}");
    }

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
