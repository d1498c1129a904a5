//! Whether two accounts on different platforms belong to the same person, from real signals.
//!
//! # Overview
//!
//! The plugin asks the host's identity directory for candidates with [`lookups`], then
//! calls [`assess`] for each candidate pair. Nothing here does I/O or spawns threads, so the
//! same code runs natively (unit tests, host-side tools) and inside the `wasm32-wasip2`
//! component.
//!
//! # Signals
//!
//! | signal | strength | weight | when |
//! |---|---|---|---|
//! | [`Signal::SameEmail`] | strong | 0.9 | a normalised e-mail ([`emails`]) is on both accounts |
//! | [`Signal::MutualUrls`] | strong | 0.95 | each account's profile points at the other's profile URL |
//! | [`Signal::PointsAt`] | medium | 0.6 | only one of them points at the other |
//! | [`Signal::SameUsername`] | medium | 0.5 | usernames equal ignoring case, 3 chars or more |
//! | [`Signal::SameName`] | weak | 0.3 | display-name keys ([`name_key`]) equal and long enough |
//!
//! # Decision
//!
//! A pair is linked when there is a strong signal, or at least two signals of which at
//! least one is medium or strong. One medium or weak signal alone never links: common
//! handles (`taro`, `admin`) and common names collide across platforms, and a false link
//! merges two people in every report.
//!
//! Two further rules keep out evidence that only *looks* independent:
//!
//! - A display name that is just the account's handle (its key equals the key of either
//!   username) is not a [`Signal::SameName`]: many platforms show the handle when no name is
//!   set, so it would count the same username twice.
//! - When one account names a *different* profile on the other account's platform (a GitHub
//!   profile whose `twitter_username` is `octo_tw`, next to the X account `octocat`), only a
//!   strong signal can link the pair: the person told us which account is theirs.
//!
//! The score is `1 - Π(1 - weight)` over the signals found, capped at 0.99; the confidence
//! is [`Confidence::High`] from 0.9, [`Confidence::Medium`] from 0.75, else
//! [`Confidence::Low`].
//!
//! # Example
//!
//! ```
//! use identity_plugin::signals::{assess, Confidence, Identity, Signal};
//!
//! let github = Identity {
//!     id: "i1".into(),
//!     platform: "github".into(),
//!     platform_user_id: "583231".into(),
//!     username: Some("octocat".into()),
//!     display_name: Some("The Octocat".into()),
//!     profile_url: Some("https://github.com/octocat".into()),
//!     metadata: serde_json::json!({ "blog": "https://zenn.dev/octocat" }),
//! };
//! let zenn = Identity {
//!     id: "i2".into(),
//!     platform: "zenn".into(),
//!     platform_user_id: "octocat".into(),
//!     username: Some("OctoCat".into()),
//!     display_name: None,
//!     profile_url: Some("https://zenn.dev/octocat".into()),
//!     metadata: serde_json::Value::Null,
//! };
//! let p = assess(&github, &zenn).expect("a one-way link plus the same username links");
//! assert_eq!(p.confidence, Confidence::Medium);
//! assert!(p.signals.contains(&Signal::SameUsername("octocat".into())));
//! assert_eq!(assess(&zenn, &github), Some(p));
//! ```

use std::collections::BTreeSet;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// An account as drowl stores it (a row of drowl's `identities` table).
///
/// Only the columns the signals read are here; `metadata` is the platform's own profile
/// data (e-mails, blog and social links), which is where most of the evidence lives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    /// The row's id: two values with the same id are one account, never linked to itself.
    pub id: String,
    /// The platform, as drowl's plugins name it: `github`, `x`, `zenn`, `qiita`, `devto`, ...
    pub platform: String,
    /// The platform's stable id for the account (unused by the signals: ids are not
    /// comparable across platforms).
    pub platform_user_id: String,
    /// The handle (`platform_username`).
    pub username: Option<String>,
    /// The name the person shows.
    pub display_name: Option<String>,
    /// The account's own profile page, which other accounts point at.
    pub profile_url: Option<String>,
    /// The platform's profile data, a JSON object (may be `Null`).
    pub metadata: Value,
}

/// How sure a [`Proposal`] is, from its score, so the host can auto-accept or queue for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    /// Score 0.9 or more: a strong signal, or several that agree.
    High,
    /// Score 0.75 or more.
    Medium,
    /// Linked, but on the weakest accepted evidence (for example same username and name).
    Low,
}

/// A proposed link between two accounts, with the evidence for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// `1 - Π(1 - weight)` over the signals, capped at 0.99: never certainty.
    pub score: f32,
    /// The band the score falls in.
    pub confidence: Confidence,
    /// One human-readable sentence naming the signals, for the review screen (under 300 chars).
    pub reason: String,
    /// The signals found, strongest kind first, each at most once.
    pub signals: Vec<Signal>,
}

/// One piece of evidence that two accounts belong to the same person.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Both accounts carry this (normalised) e-mail address. Strong.
    SameEmail(String),
    /// Each account's profile points at the other's profile URL. Strong.
    MutualUrls,
    /// The account on platform `from` points at the profile of the one on `to`, not back. Medium.
    PointsAt {
        /// The platform of the account whose profile holds the link.
        from: String,
        /// The platform of the account linked to.
        to: String,
    },
    /// Same username, compared lowercased (the lowercased name is kept). Medium.
    SameUsername(String),
    /// Display names with the same [`name_key`] (the first account's name is kept). Weak.
    SameName(String),
}

/// How much one [`Signal`] proves on its own, which decides whether a pair may be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// Never links alone or with another weak signal.
    Weak,
    /// Links only together with another signal.
    Medium,
    /// Links on its own.
    Strong,
}

impl Signal {
    /// The signal's weight in the score: the chance, roughly, that it is right on its own.
    pub fn weight(&self) -> f64 {
        match self {
            Signal::SameEmail(_) => 0.9,
            Signal::MutualUrls => 0.95,
            Signal::PointsAt { .. } => 0.6,
            Signal::SameUsername(_) => 0.5,
            Signal::SameName(_) => 0.3,
        }
    }

    /// The signal's [`Strength`], which the decision rule reads.
    pub fn strength(&self) -> Strength {
        match self {
            Signal::SameEmail(_) | Signal::MutualUrls => Strength::Strong,
            Signal::PointsAt { .. } | Signal::SameUsername(_) => Strength::Medium,
            Signal::SameName(_) => Strength::Weak,
        }
    }
}

/// What to ask the host's identity directory for, to find candidates for `a`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lookup {
    /// Accounts with this username (lowercased; compare case-insensitively).
    Username(String),
    /// Accounts carrying this normalised e-mail in their metadata.
    Email(String),
    /// Accounts whose normalised profile URL is this, or whose metadata points at it.
    Url(String),
    /// Accounts whose display name has this [`name_key`].
    DisplayName(String),
}

/// Hosts whose profile paths are case-insensitive, so the path is lowercased: without it
/// `github.com/OctoCat` and `github.com/octocat` would be two profiles.
const PROFILE_HOSTS: &[&str] = &["github.com", "x.com", "zenn.dev", "qiita.com", "dev.to"];

/// Metadata keys holding e-mail addresses (a string, or an array of strings or `{email}` objects).
const EMAIL_KEYS: &[&str] = &[
    "email",
    "emails",
    "commit_emails",
    "commitEmails",
    "public_email",
];

/// Metadata keys holding URLs the account points at (a string, or an array of strings or
/// `{url}` objects). `html_url` is deliberately absent: on GitHub it is the account's own
/// profile, not a link to another account.
const URL_KEYS: &[&str] = &["blog", "website", "website_url", "url", "urls", "links"];

/// Metadata keys holding an X (Twitter) handle: `twitter_username` (GitHub, Zenn, dev.to)
/// and `twitter_screen_name` (Qiita).
const X_HANDLE_KEYS: &[&str] = &["twitter_username", "twitter_screen_name"];

/// Metadata keys holding a GitHub login: `github_username` (Zenn, dev.to) and
/// `github_login_name` (Qiita).
const GITHUB_HANDLE_KEYS: &[&str] = &["github_username", "github_login_name"];

/// Local parts of addresses that nobody reads, so they say nothing about who owns them.
const NOREPLY_LOCAL_PARTS: &[&str] = &["noreply", "no-reply", "donotreply", "do-not-reply"];

/// The longest piece of account data quoted in a reason, so one sentence stays readable.
const QUOTE_MAX_CHARS: usize = 60;

/// The longest reason, in chars (the limit is "under 300").
const REASON_MAX_CHARS: usize = 299;

/// The candidates to look up for `a`: its lowercased username (3 chars or more), each of
/// its [`emails`], each URL it points at ([`urls`], to find the accounts it names), its own
/// normalised profile URL (to find accounts that point at it) and its display-name key when
/// the key is long enough to count. Deduplicated and sorted, so a job's queries are stable.
pub fn lookups(a: &Identity) -> Vec<Lookup> {
    let mut out = BTreeSet::new();
    if let Some(handle) = handle(a) {
        out.insert(Lookup::Username(handle));
    }
    out.extend(emails(a).into_iter().map(Lookup::Email));
    out.extend(urls(a).into_iter().map(Lookup::Url));
    out.extend(own_profile(a).map(Lookup::Url));
    if let Some(key) = a.display_name.as_deref().map(name_key)
        && key_counts(&key)
    {
        out.insert(Lookup::DisplayName(key));
    }
    out.into_iter().collect()
}

/// Whether `a` and `b` belong to the same person, and how sure that is.
///
/// `None` when they must not be linked: the same account twice, two accounts on the same
/// platform (one person's second account there is not for a heuristic to decide), or not
/// enough evidence (see the [module docs](self)). Symmetric: `assess(a, b) == assess(b, a)`,
/// because the pair is put in a fixed order (by platform, then id) before anything is read.
pub fn assess(a: &Identity, b: &Identity) -> Option<Proposal> {
    if a.id == b.id || platform_key(a) == platform_key(b) {
        return None;
    }
    let (a, b) = if (platform_key(a), &a.id) <= (platform_key(b), &b.id) {
        (a, b)
    } else {
        (b, a)
    };

    let mut signals = Vec::new();

    let emails_b = emails(b);
    if let Some(email) = emails(a).into_iter().find(|e| emails_b.contains(e)) {
        signals.push(Signal::SameEmail(email));
    }

    let (urls_a, urls_b) = (urls(a), urls(b));
    let (profile_a, profile_b) = (own_profile(a), own_profile(b));
    let a_to_b = profile_b.as_ref().is_some_and(|p| urls_a.contains(p));
    let b_to_a = profile_a.as_ref().is_some_and(|p| urls_b.contains(p));
    match (a_to_b, b_to_a) {
        (true, true) => signals.push(Signal::MutualUrls),
        (true, false) => signals.push(Signal::PointsAt {
            from: a.platform.clone(),
            to: b.platform.clone(),
        }),
        (false, true) => signals.push(Signal::PointsAt {
            from: b.platform.clone(),
            to: a.platform.clone(),
        }),
        (false, false) => {}
    }

    let (handle_a, handle_b) = (handle(a), handle(b));
    if let (Some(x), Some(y)) = (&handle_a, &handle_b)
        && x == y
    {
        signals.push(Signal::SameUsername(x.clone()));
    }

    if let (Some(name_a), Some(name_b)) = (a.display_name.as_deref(), b.display_name.as_deref()) {
        let key = name_key(name_a);
        let is_a_handle = [&a.username, &b.username]
            .into_iter()
            .flatten()
            .any(|u| name_key(u) == key);
        if key_counts(&key) && key == name_key(name_b) && !is_a_handle {
            signals.push(Signal::SameName(name_a.trim().to_owned()));
        }
    }

    let strong = signals.iter().any(|s| s.strength() == Strength::Strong);
    let backed = signals.len() >= 2 && signals.iter().any(|s| s.strength() >= Strength::Medium);
    if !(strong || backed) {
        return None;
    }
    let names_another = claims_other_profile(&urls_a, profile_b.as_deref())
        || claims_other_profile(&urls_b, profile_a.as_deref());
    if !strong && names_another {
        return None;
    }

    let unlikely: f64 = signals.iter().map(|s| 1.0 - s.weight()).product();
    // Rounded to 1/1000 so that float noise cannot move a score across a band edge
    // (0.9 alone must be High, on every target).
    let score = ((1.0 - unlikely).min(0.99) * 1000.0).round() / 1000.0;
    let confidence = if score >= 0.9 {
        Confidence::High
    } else if score >= 0.75 {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    Some(Proposal {
        score: score as f32,
        confidence,
        reason: reason(a, b, &signals),
        signals,
    })
}

/// The key display names are compared by, so that spellings of one name match.
///
/// Unicode NFKD, then every combining mark U+0300..=U+036F and every whitespace char
/// removed, then lowercased: `José García`, `jose garcia` and `JOSE GARCIA` share a key, as
/// do `山田 太郎` and `山田太郎` (an ideographic space is whitespace after NFKD), fullwidth
/// `ＹＡＭＡＤＡ` and `yamada`, half-width `ﾔﾏﾀﾞ` and `ヤマダ`.
///
/// The host computes the same key in SQL to find candidates,
/// `lower(regexp_replace(normalize(display_name, NFKD), '[\u0300-\u036f[:space:]]', '', 'g'))`,
/// so this function must stay exactly that and nothing more: any other transformation
/// (punctuation, transliteration, reordering) would make the plugin and the directory
/// disagree about which names match. Lowercasing is per char, as SQL `lower` does, so a
/// final `Σ` becomes `σ` and not `ς`.
pub fn name_key(name: &str) -> String {
    name.nfkd()
        .filter(|c| !matches!(c, '\u{0300}'..='\u{036F}') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The account's e-mail addresses, from metadata `email`, `emails`, `commit_emails`,
/// `commitEmails` and `public_email`: trimmed and lowercased, deduplicated and sorted.
///
/// Only plausible addresses are kept (exactly one `@`, a dot inside the domain), and
/// no-reply addresses (`*@users.noreply.github.com`, `noreply@...`, `no-reply@...`,
/// `donotreply@...`) never are: they are shared by many people or say nothing about who
/// owns them, so they must never link two accounts.
pub fn emails(i: &Identity) -> Vec<String> {
    let mut out = BTreeSet::new();
    for key in EMAIL_KEYS {
        for raw in strings_at(&i.metadata, key, "email") {
            if let Some(email) = normalise_email(raw) {
                out.insert(email);
            }
        }
    }
    out.into_iter().collect()
}

/// The normalised URLs the account's profile points at, deduplicated and sorted.
///
/// From metadata `blog`, `website`, `website_url`, `url`, `urls` and `links`, plus an X
/// handle (`twitter_username`, Qiita's `twitter_screen_name`) as `https://x.com/<handle>`
/// and a GitHub login (`github_username`, Qiita's `github_login_name`) as
/// `https://github.com/<login>`. The account's own profile URL is left out: pointing at
/// yourself says nothing about another account.
pub fn urls(i: &Identity) -> Vec<String> {
    let mut out = BTreeSet::new();
    for key in URL_KEYS {
        for raw in strings_at(&i.metadata, key, "url") {
            out.extend(normalise_url(raw));
        }
    }
    let handles = [
        (X_HANDLE_KEYS, "x.com", 15, '_'),
        (GITHUB_HANDLE_KEYS, "github.com", 39, '-'),
    ];
    for (keys, host, max_len, extra) in handles {
        for key in keys {
            for raw in strings_at(&i.metadata, key, "username") {
                let handle = raw.trim().trim_start_matches('@');
                let valid = (1..=max_len).contains(&handle.len())
                    && handle
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == extra);
                if valid {
                    out.extend(normalise_url(&format!("https://{host}/{handle}")));
                }
            }
        }
    }
    if let Some(own) = own_profile(i) {
        out.remove(&own);
    }
    out.into_iter().collect()
}

/// The account's own profile URL, normalised: what other accounts point at.
///
/// `None` when there is none, when it does not parse, and when it is the bare root of a
/// profile host (`https://zenn.dev`), which is nobody's profile.
pub fn own_profile(i: &Identity) -> Option<String> {
    let url = normalise_url(i.profile_url.as_deref()?)?;
    let (host, path) = split_url(&url);
    if path.is_empty() && PROFILE_HOSTS.contains(&host) {
        return None;
    }
    Some(url)
}

/// One spelling for each web address, so that links written differently compare equal.
///
/// `http` and `https` become `https`; a value without a scheme (`example.com/me`) is taken
/// as `https`; other schemes (`mailto:`, `ftp://`), user info, whitespace and hosts without a
/// dot are rejected (`None`). The host is lowercased (and IDNA-encoded), a leading `www.`
/// and a trailing `.` dropped, `twitter.com` becomes `x.com`; the default port, query,
/// fragment and trailing `/` are dropped. The path keeps its case, except on hosts whose
/// profile paths ignore case (github.com, x.com, zenn.dev, qiita.com, dev.to), where it is
/// lowercased.
///
/// ```
/// use identity_plugin::signals::normalise_url;
///
/// assert_eq!(
///     normalise_url("http://www.Twitter.com/OctoCat/?lang=ja#top").as_deref(),
///     Some("https://x.com/octocat"),
/// );
/// assert_eq!(normalise_url("example.com/Me/").as_deref(), Some("https://example.com/Me"));
/// assert_eq!(normalise_url("mailto:me@example.com"), None);
/// ```
pub fn normalise_url(u: &str) -> Option<String> {
    let s = u.trim();
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let full = match scheme_of(s) {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            s.to_owned()
        }
        Some(_) => return None,
        None => format!("https://{}", s.trim_start_matches('/')),
    };
    let url = url::Url::parse(&full).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let host = if host == "twitter.com" { "x.com" } else { host };
    if !host.contains('.') {
        return None;
    }
    let port = match url.port() {
        Some(p) if p != 80 && p != 443 => format!(":{p}"),
        _ => String::new(),
    };
    let path = url.path().trim_end_matches('/');
    let path = if PROFILE_HOSTS.contains(&host) {
        path.to_ascii_lowercase()
    } else {
        path.to_owned()
    };
    Some(format!("https://{host}{port}{path}"))
}

/// The scheme `s` starts with, if any: `http` in `http://x`, `mailto` in `mailto:me@x`.
/// `example.com:8080/me` has none (a dot cannot be in a scheme we accept without `://`),
/// so a host with a port is still read as a schemeless URL.
fn scheme_of(s: &str) -> Option<&str> {
    let (head, rest) = s.split_once(':')?;
    let mut chars = head.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return None;
    }
    if rest.starts_with("//")
        || (!head.contains('.') && !rest.starts_with(|c: char| c.is_ascii_digit()))
    {
        Some(head)
    } else {
        None
    }
}

/// Host and path (without the leading `/`) of a URL from [`normalise_url`].
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    match rest.split_once('/') {
        Some((host, path)) => (host, path),
        None => (rest, ""),
    }
}

/// Whether `urls` name a profile on the host of `profile` but never `profile` itself: a
/// GitHub account saying its X account is `x.com/octo_tw` is evidence that `x.com/octocat`
/// is someone else. Only profile hosts and profile-shaped paths (one segment) count, since a
/// link to an article or a repository on the same host names no account; and listing
/// `profile` next to another account there (a personal and a work account) is no conflict.
fn claims_other_profile(urls: &[String], profile: Option<&str>) -> bool {
    let Some(profile) = profile else {
        return false;
    };
    let (host, path) = split_url(profile);
    let is_profile = |host: &str, path: &str| {
        PROFILE_HOSTS.contains(&host) && !path.is_empty() && !path.contains('/')
    };
    if !is_profile(host, path) || urls.iter().any(|u| u == profile) {
        return false;
    }
    urls.iter().any(|u| {
        let (h, p) = split_url(u);
        h == host && is_profile(h, p) && u != profile
    })
}

/// A normalised e-mail address, or `None` when it is implausible or a no-reply address.
fn normalise_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    let noreply = NOREPLY_LOCAL_PARTS.contains(&local)
        || domain == "noreply.github.com"
        || domain.ends_with(".noreply.github.com");
    (plausible && !noreply).then_some(email)
}

/// The strings under `key` in a metadata object: the value itself if it is a string, or the
/// strings in it if it is an array (elements may also be objects with a `field` string).
fn strings_at<'a>(metadata: &'a Value, key: &str, field: &str) -> Vec<&'a str> {
    match metadata.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o.get(field).and_then(Value::as_str),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The account's username for comparison: trimmed, without a leading `@`, lowercased, and
/// only when 3 chars or more (shorter handles are shared by too many people).
fn handle(i: &Identity) -> Option<String> {
    let handle = i
        .username
        .as_deref()?
        .trim()
        .trim_start_matches('@')
        .to_lowercase();
    (handle.chars().count() >= 3).then_some(handle)
}

/// The platform as compared for "same platform": `GitHub` and `github` are one platform.
fn platform_key(i: &Identity) -> String {
    i.platform.trim().to_lowercase()
}

/// Whether a [`name_key`] is long enough to be a name: 2 letters or digits at least, and 4
/// when they are all Latin (`js`, `dev` and `j.s.` are initials or words, not names).
///
/// Only letters and digits are counted, so punctuation cannot lengthen initials, and
/// conjoining Hangul vowels and finals are not, since NFKD splits one syllable (`김`, a
/// surname) into two or three of them.
fn key_counts(key: &str) -> bool {
    let counted: Vec<char> = key
        .chars()
        .filter(|c| c.is_alphanumeric() && !matches!(c, '\u{1161}'..='\u{11FF}'))
        .collect();
    let latin_only = counted.iter().all(|&c| is_latin(c));
    counted.len() >= if latin_only { 4 } else { 2 }
}

/// Whether `c` is ASCII or in one of the Latin blocks.
fn is_latin(c: char) -> bool {
    c.is_ascii()
        || matches!(c,
            '\u{00C0}'..='\u{024F}'
            | '\u{0250}'..='\u{02AF}'
            | '\u{1E00}'..='\u{1EFF}'
            | '\u{2C60}'..='\u{2C7F}'
            | '\u{A720}'..='\u{A7FF}'
            | '\u{AB30}'..='\u{AB6F}')
}

/// The sentence a reviewer reads: the signals, strongest first, naming the two platforms once.
fn reason(a: &Identity, b: &Identity, signals: &[Signal]) -> String {
    let platforms = format!("{} and {}", quote(&a.platform, 20), quote(&b.platform, 20));
    let mut named = false;
    let on_both = |named: &mut bool| {
        if std::mem::replace(named, true) {
            String::new()
        } else {
            format!(" on {platforms}")
        }
    };
    let parts: Vec<String> = signals
        .iter()
        .map(|s| match s {
            Signal::SameEmail(e) => format!(
                "same e-mail `{}`{}",
                quote(e, QUOTE_MAX_CHARS),
                on_both(&mut named)
            ),
            Signal::MutualUrls => {
                named = true;
                format!("the {platforms} profiles link to each other")
            }
            Signal::PointsAt { from, to } => {
                named = true;
                format!(
                    "the {} profile links to the {} profile",
                    quote(from, 20),
                    quote(to, 20)
                )
            }
            Signal::SameUsername(u) => format!(
                "same username `{}`{}",
                quote(u, QUOTE_MAX_CHARS),
                on_both(&mut named)
            ),
            Signal::SameName(n) => {
                format!("display names match (`{}`)", quote(n, QUOTE_MAX_CHARS))
            }
        })
        .collect();
    let sentence = parts.join("; ");
    if sentence.chars().count() <= REASON_MAX_CHARS {
        sentence
    } else {
        let mut cut: String = sentence.chars().take(REASON_MAX_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// Account data made safe to quote in a reason: no control chars or backticks (which would
/// break the quoting), at most `max` chars.
fn quote(s: &str, max: usize) -> String {
    let clean: Vec<char> = s
        .trim()
        .chars()
        .filter(|&c| !c.is_control() && c != '`')
        .collect();
    if clean.len() <= max {
        clean.into_iter().collect()
    } else {
        let mut cut: String = clean[..max - 1].iter().collect();
        cut.push('…');
        cut
    }
}
