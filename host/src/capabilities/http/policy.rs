//! What a plugin may reach over HTTP: origins, the effective allow-list and limits.
//!
//! A plugin's manifest declares the origins it needs and the operator grants origins to
//! it; only the intersection is reachable. Both sides are compared as normalised
//! [`Origin`]s so that spelling tricks (`HTTPS://API.Example.com.:443`, IDN, default
//! ports) neither widen nor break the allow-list.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use url::{Host, Url};

/// The two schemes a plugin may use; anything else (`file`, `ftp`, `ws`, ...) would reach
/// code paths the policy does not vet.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP, default port 80.
    Http,
    /// HTTP over TLS, default port 443.
    Https,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A normalised `scheme://host:port`, the unit of the allow-list.
///
/// The host is lowercased, IDNA-encoded (punycode) and stripped of a trailing dot by the
/// same parser that parses request URLs; an IP literal is stored in its canonical form
/// (IPv6 in brackets), so `http://2130706433` and `http://127.0.0.1:80` are the same origin.
/// The port is always explicit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

/// Why a string is not a valid origin; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// No `scheme://` prefix.
    #[error("`{0}` has no scheme; write it as `https://host[:port]`")]
    MissingScheme(String),
    /// A scheme other than http or https.
    #[error("scheme `{0}` is not allowed; only http and https are")]
    UnsupportedScheme(String),
    /// The URL parser rejected the string.
    #[error("`{input}` is not a valid URL: {reason}")]
    Invalid {
        /// The string that was parsed.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// No host, or a host that is only a dot.
    #[error("`{0}` has no host")]
    MissingHost(String),
    /// `*` in the host: wildcards are not supported, every origin is listed exactly.
    #[error("`{0}` contains a wildcard; list each origin exactly")]
    Wildcard(String),
    /// `user:password@` before the host.
    #[error("`{0}` contains credentials; origins are scheme://host[:port] only")]
    Credentials(String),
    /// A path, query or fragment after the authority.
    #[error("`{0}` has a path, query or fragment; origins are scheme://host[:port] only")]
    NotAnOrigin(String),
    /// Port 0 cannot be connected to.
    #[error("`{0}` has port 0")]
    PortZero(String),
}

impl Origin {
    /// The origin a parsed URL points at.
    ///
    /// Only the scheme, host and port are looked at; the caller decides whether a path or
    /// credentials are acceptable.
    pub fn from_url(url: &Url) -> Result<Self, OriginError> {
        // The URL parser lowercases the scheme, so the exact names are all that can match.
        let scheme: Scheme = url
            .scheme()
            .parse()
            .map_err(|_| OriginError::UnsupportedScheme(url.scheme().to_owned()))?;
        // Errors name the authority only: a request URL's path and query may carry tokens.
        let authority = || format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        let host = match url.host() {
            Some(Host::Domain(domain)) => {
                let domain = domain.strip_suffix('.').unwrap_or(domain);
                if domain.is_empty() {
                    return Err(OriginError::MissingHost(authority()));
                }
                if domain.contains('*') {
                    return Err(OriginError::Wildcard(authority()));
                }
                domain.to_ascii_lowercase()
            }
            Some(Host::Ipv4(v4)) => v4.to_string(),
            Some(Host::Ipv6(v6)) => format!("[{v6}]"),
            None => return Err(OriginError::MissingHost(authority())),
        };
        let port = url.port().unwrap_or(scheme.default_port());
        if port == 0 {
            return Err(OriginError::PortZero(authority()));
        }
        Ok(Origin { scheme, host, port })
    }

    /// The origin of a whole URL, ignoring its credentials, path, query and fragment; used
    /// for `{{key}}` templates, whose config value is typically an API base URL.
    pub fn of_url(input: &str) -> Result<Self, OriginError> {
        Self::from_url(&parse_http_url(input)?)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The normalised host: a lowercase ASCII domain without trailing dot, an IPv4 address,
    /// or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, with the scheme's default filled in.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address when the host is an IP literal; such origins are connected to without
    /// DNS, so the address must be checked against the blocklist directly.
    pub fn ip(&self) -> Option<IpAddr> {
        let bare = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        bare.parse().ok()
    }
}

/// Parses `input` as an http(s) URL, with scheme errors worded for plugin authors.
fn parse_http_url(input: &str) -> Result<Url, OriginError> {
    let Some((scheme, _)) = input.split_once("://") else {
        return Err(OriginError::MissingScheme(input.to_owned()));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(OriginError::UnsupportedScheme(scheme.to_owned()));
    }
    Url::parse(input).map_err(|e| OriginError::Invalid {
        input: input.to_owned(),
        reason: e.to_string(),
    })
}

impl FromStr for Origin {
    type Err = OriginError;

    /// Parses `scheme://host[:port]`, optionally followed by a single `/`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        let url = parse_http_url(input)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OriginError::Credentials(input.to_owned()));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(OriginError::NotAnOrigin(input.to_owned()));
        }
        Origin::from_url(&url)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

pub use crate::policy::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REQUESTS_PER_JOB, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TOTAL_TIMEOUT, EgressLimits,
};

/// Why a plugin's egress policy could not be built; every variant names the entry at fault
/// so the operator can fix the manifest, the config or the grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A declared outbound host is not a valid origin.
    #[error("outbound host `{entry}` declared by the plugin is invalid: {source}")]
    InvalidDeclared {
        /// The manifest entry.
        entry: String,
        /// What is wrong with it.
        source: OriginError,
    },
    /// A `{{key}}` template names a config field that has no value.
    #[error("outbound host `{entry}` needs config field `{key}`, which is not set")]
    MissingConfig {
        /// The manifest entry.
        entry: String,
        /// The config key it names.
        key: String,
    },
    /// A `{{key}}` template whose config value is not an http(s) URL.
    #[error("outbound host `{entry}`: config field `{key}` is not an http(s) URL: {source}")]
    InvalidConfigUrl {
        /// The manifest entry.
        entry: String,
        /// The config key it names.
        key: String,
        /// What is wrong with the value.
        source: OriginError,
    },
    /// A template that is malformed or not the whole entry.
    #[error("outbound host `{0}` has a malformed template; write `{{{{key}}}}` as the whole entry")]
    BadTemplate(String),
    /// An operator grant that is neither `*` nor a valid origin.
    #[error("granted outbound host `{entry}` is invalid: {source}")]
    InvalidGrant {
        /// The grant as configured.
        entry: String,
        /// What is wrong with it.
        source: OriginError,
    },
}

/// Everything the egress engine needs to decide about one plugin's requests.
///
/// Built once per plugin (and its config), then shared by all of its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<Origin>,
    allowed_networks: Vec<IpNet>,
    limits: EgressLimits,
}

impl EgressPolicy {
    /// Builds the effective policy: the origins both `declared` by the plugin and
    /// `granted` by the operator.
    ///
    /// - `declared` are the manifest's `outbound-hosts`; an entry that is exactly
    ///   `{{key}}` stands for the origin of the URL in config field `key` (looked up in
    ///   `config`, the plugin's non-secret config with defaults applied), so a plugin can
    ///   point at a configurable API base URL. A value listing several URLs (separated
    ///   by commas or whitespace, as a feed plugin's list of feeds) declares the origin
    ///   of each. A template naming an unset field is an error rather than silently
    ///   dropped, so the operator learns about it at load.
    /// - `granted` are the operator's grants: origins, or `*` for every declared one.
    ///   Grants the plugin did not declare are ignored.
    /// - `allowed_networks` are the operator's exceptions to the private-address
    ///   blocklist (empty by default; tests and local development allow loopback).
    pub fn new(
        declared: &[String],
        granted: &[String],
        config: &HashMap<String, String>,
        allowed_networks: Vec<IpNet>,
        limits: EgressLimits,
    ) -> Result<Self, PolicyError> {
        let mut expanded = BTreeSet::new();
        for entry in declared {
            expanded.extend(expand_declared(entry, config)?);
        }
        let declared = expanded;
        let mut grant_all = false;
        let mut grants = BTreeSet::new();
        for entry in granted {
            if entry.trim() == "*" {
                grant_all = true;
                continue;
            }
            let origin = entry
                .parse::<Origin>()
                .map_err(|source| PolicyError::InvalidGrant {
                    entry: entry.clone(),
                    source,
                })?;
            grants.insert(origin);
        }
        let allowed = declared
            .into_iter()
            .filter(|origin| grant_all || grants.contains(origin))
            .collect();
        Ok(EgressPolicy {
            allowed,
            allowed_networks,
            limits,
        })
    }

    /// The effective allow-list, sorted.
    pub fn allowed(&self) -> &[Origin] {
        &self.allowed
    }

    /// Whether requests to `origin` may be sent (before any address checks).
    pub fn allows(&self, origin: &Origin) -> bool {
        self.allowed.binary_search(origin).is_ok()
    }

    /// The operator's exceptions to the address blocklist.
    pub fn allowed_networks(&self) -> &[IpNet] {
        &self.allowed_networks
    }

    /// Timeouts, size and request caps.
    pub fn limits(&self) -> &EgressLimits {
        &self.limits
    }
}

/// Turns one manifest entry into an origin, expanding a `{{key}}` template.
fn expand_declared(
    entry: &str,
    config: &HashMap<String, String>,
) -> Result<Vec<Origin>, PolicyError> {
    let trimmed = entry.trim();
    if !trimmed.contains("{{") && !trimmed.contains("}}") {
        return trimmed
            .parse()
            .map(|origin| vec![origin])
            .map_err(|source| PolicyError::InvalidDeclared {
                entry: entry.to_owned(),
                source,
            });
    }
    let key = trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .map(str::trim)
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .ok_or_else(|| PolicyError::BadTemplate(entry.to_owned()))?;
    let value = config
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PolicyError::MissingConfig {
            entry: entry.to_owned(),
            key: key.to_owned(),
        })?;
    // URLs hold no commas or whitespace of their own, so both separate list items.
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|url| !url.is_empty())
        .map(|url| {
            Origin::of_url(url).map_err(|source| PolicyError::InvalidConfigUrl {
                entry: entry.to_owned(),
                key: key.to_owned(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn origin(s: &str) -> Origin {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origins_are_normalised() {
        let cases = [
            ("https://api.github.com", "https://api.github.com:443"),
            ("https://api.github.com/", "https://api.github.com:443"),
            ("HTTPS://API.GitHub.COM:443", "https://api.github.com:443"),
            ("https://api.github.com.", "https://api.github.com:443"),
            ("http://example.com:8080", "http://example.com:8080"),
            ("http://example.com:80", "http://example.com:80"),
            ("http://Bücher.example", "http://xn--bcher-kva.example:80"),
            ("https://ＥＸＡＭＰＬＥ.com", "https://example.com:443"),
            ("http://ex%61mple.com", "http://example.com:80"),
            ("http://2130706433:9000", "http://127.0.0.1:9000"),
            ("http://0x7f.1", "http://127.0.0.1:80"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://[0:0::1]", "http://[::1]:80"),
            ("  https://example.com  ", "https://example.com:443"),
        ];
        for (input, want) in cases {
            assert_eq!(origin(input).to_string(), want, "{input}");
        }
        assert_eq!(
            origin("https://a.example"),
            origin("https://A.example.:443/")
        );
        assert_eq!(origin("http://[::1]:1").ip(), Some("::1".parse().unwrap()));
        assert_eq!(
            origin("http://0x7f.1").ip(),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(origin("http://example.com").ip(), None);
        assert_eq!(origin("http://example.com").scheme(), Scheme::Http);
        assert_eq!(origin("https://example.com").port(), 443);
        assert_eq!(origin("https://example.com.").host(), "example.com");
    }

    #[test]
    fn schemes_are_named_as_in_urls() {
        for (scheme, name) in [(Scheme::Http, "http"), (Scheme::Https, "https")] {
            assert_eq!(scheme.as_str(), name);
            assert_eq!(name.parse::<Scheme>(), Ok(scheme));
        }
        assert!("ftp".parse::<Scheme>().is_err());
    }

    #[test]
    fn invalid_origins_say_what_is_wrong() {
        let cases = [
            ("api.github.com", "has no scheme"),
            ("ftp://example.com", "scheme `ftp` is not allowed"),
            ("file:///etc/passwd", "scheme `file` is not allowed"),
            ("ws://example.com", "scheme `ws` is not allowed"),
            ("https://", "not a valid URL"),
            ("https://exa mple.com", "not a valid URL"),
            ("https://example.com:99999", "not a valid URL"),
            ("https://*.example.com", "wildcard"),
            ("https://user:pw@example.com", "credentials"),
            ("https://a.com@evil.test", "credentials"),
            ("https://example.com/api", "path, query or fragment"),
            ("https://example.com?x=1", "path, query or fragment"),
            ("https://example.com#top", "path, query or fragment"),
            ("https://example.com:0", "port 0"),
            ("https://.", "has no host"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Origin>().expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn effective_origins_are_declared_and_granted() {
        let declared = strings(&[
            "https://api.github.com",
            "https://uploads.github.com",
            "http://127.0.0.1:8080",
        ]);
        let granted = strings(&[
            "https://API.github.com:443/",
            "http://127.0.0.1:8080",
            "https://other.example",
        ]);
        let policy = EgressPolicy::new(
            &declared,
            &granted,
            &HashMap::new(),
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        assert_eq!(
            policy.allowed(),
            [
                origin("http://127.0.0.1:8080"),
                origin("https://api.github.com")
            ]
        );
        assert!(policy.allows(&origin("https://api.github.com.")));
        assert!(!policy.allows(&origin("https://uploads.github.com")));
        assert!(!policy.allows(&origin("https://other.example")));
        assert!(!policy.allows(&origin("http://api.github.com")));
        assert!(!policy.allows(&origin("https://api.github.com:8443")));

        let all = EgressPolicy::new(
            &declared,
            &strings(&["*"]),
            &HashMap::new(),
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        assert_eq!(all.allowed().len(), 3);

        let none = EgressPolicy::new(
            &declared,
            &[],
            &HashMap::new(),
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        assert!(none.allowed().is_empty());

        let undeclared = EgressPolicy::new(
            &[],
            &strings(&["*"]),
            &HashMap::new(),
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        assert!(undeclared.allowed().is_empty());
    }

    #[test]
    fn templates_expand_to_the_origin_of_a_config_url() {
        let config = HashMap::from([
            (
                "api-base-url".to_owned(),
                "https://GHE.example.com/api/v3/?x=1".to_owned(),
            ),
            ("fixtures".to_owned(), "http://127.0.0.1:4000".to_owned()),
            ("not-a-url".to_owned(), "ghe.example.com".to_owned()),
            ("ftp".to_owned(), "ftp://ghe.example.com".to_owned()),
            ("empty".to_owned(), " ".to_owned()),
        ]);
        let declared = strings(&[
            "{{api-base-url}}",
            "{{ fixtures }}",
            "https://api.github.com",
        ]);
        let policy = EgressPolicy::new(
            &declared,
            &strings(&["*"]),
            &config,
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        assert_eq!(
            policy.allowed(),
            [
                origin("http://127.0.0.1:4000"),
                origin("https://api.github.com"),
                origin("https://ghe.example.com")
            ]
        );

        let granted = strings(&["https://ghe.example.com"]);
        let only_ghe = EgressPolicy::new(
            &declared,
            &granted,
            &config,
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        assert_eq!(only_ghe.allowed(), [origin("https://ghe.example.com")]);

        let err = |entry: &str| {
            EgressPolicy::new(
                &strings(&[entry]),
                &strings(&["*"]),
                &config,
                vec![],
                EgressLimits::default(),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(err("{{missing}}").contains("config field `missing`, which is not set"));
        assert!(err("{{empty}}").contains("config field `empty`, which is not set"));
        assert!(err("{{not-a-url}}").contains("config field `not-a-url` is not an http(s) URL"));
        assert!(err("{{ftp}}").contains("scheme `ftp` is not allowed"));
        assert!(err("https://{{host}}").contains("malformed template"));
        assert!(err("{{api-base-url").contains("malformed template"));
        assert!(err("{{}}").contains("malformed template"));
        assert!(err("{{a b}}").contains("malformed template"));
        assert!(err("https://example.com/path").contains("declared by the plugin is invalid"));
    }

    #[test]
    fn a_template_listing_urls_declares_each_origin() {
        let config = HashMap::from([
            (
                "feeds".to_owned(),
                "https://zenn.dev/topics/rust/feed, https://blog.example.com/index.xml\n  http://127.0.0.1:4000/a.xml,https://zenn.dev/other/feed".to_owned(),
            ),
            ("bad".to_owned(), "https://ok.example/feed, not-a-url".to_owned()),
        ]);
        let policy = EgressPolicy::new(
            &strings(&["{{feeds}}"]),
            &strings(&["https://zenn.dev", "http://127.0.0.1:4000"]),
            &config,
            vec![],
            EgressLimits::default(),
        )
        .unwrap();
        // Declared: three origins; granted: two of them.
        assert_eq!(
            policy.allowed(),
            [origin("http://127.0.0.1:4000"), origin("https://zenn.dev")]
        );
        let err = EgressPolicy::new(
            &strings(&["{{bad}}"]),
            &strings(&["*"]),
            &config,
            vec![],
            EgressLimits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("config field `bad` is not an http(s) URL"),
            "{err}"
        );
    }

    #[test]
    fn invalid_grants_are_errors() {
        let err = EgressPolicy::new(
            &[],
            &strings(&["example.com"]),
            &HashMap::new(),
            vec![],
            EgressLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PolicyError::InvalidGrant { .. }));
        assert!(
            err.to_string().contains("`example.com` has no scheme"),
            "{err}"
        );
    }

    #[test]
    fn default_limits_are_documented_values() {
        let limits = EgressLimits::default();
        assert_eq!(limits.connect_timeout, Duration::from_secs(5));
        assert_eq!(limits.total_timeout, Duration::from_secs(30));
        assert_eq!(limits.max_response_bytes, 16 * 1024 * 1024);
        assert_eq!(limits.max_requests_per_job, 1000);
    }
}
