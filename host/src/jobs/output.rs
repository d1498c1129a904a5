//! What a plugin returns, checked whole before any of it is stored.
//!
//! Two rules meet here. Scope: a plugin speaks only for what is its own, the event
//! sources it owns ([`OutputScope`], resolved by the registry) and the identity platforms
//! of those sources or granted to it, so it can neither pre-empt another connector's
//! events nor rewrite another platform's accounts. Shape: every string a plugin returns
//! goes into a PostgreSQL column, a jsonb document, the job output or Redis, so a value
//! those cannot hold (NUL, over-long, not JSON, a `javascript:` profile link) is refused
//! here as `invalid-output` naming the field, instead of surfacing later as a storage
//! error or a broken row.
//!
//! Messages quote at most the start of the offending value; the executor masks the
//! plugin's secrets in every failure message before it leaves the job.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use serde_json::json;

use super::model::JobFailure;
use crate::bindings::types;
use crate::redact::Redactor;
use crate::storage::IdentityRecord;

/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;
/// Longest external id, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 256;
/// Longest platform name, in bytes.
pub const MAX_PLATFORM_BYTES: usize = 64;
/// Longest platform user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;
/// Longest username or display name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest profile or avatar URL, and export location, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest cursor, in bytes: it is stored per stream and shown in every job output.
pub const MAX_CURSOR_BYTES: usize = 64 * 1024;

/// The sources and platforms one plugin may write for, resolved from the installed
/// plugins and the operator's grants (see `Registry::scope`).
#[derive(Debug, Clone, Default)]
pub(crate) struct OutputScope {
    /// The plugin's id, for messages.
    pub(crate) plugin: String,
    /// What its manifest declares, for messages.
    pub(crate) declared: Vec<String>,
    /// Sources it may emit events for.
    pub(crate) sources: BTreeSet<String>,
    /// Declared sources it may not emit, each with the other installed plugins that
    /// declare it too.
    pub(crate) contested: BTreeMap<String, Vec<String>>,
    /// Platforms it may report identities for: its sources' and those granted.
    pub(crate) platforms: BTreeSet<String>,
}

/// An `invalid-output` failure naming `field`.
pub(crate) fn invalid(field: impl Display, problem: impl Display) -> JobFailure {
    JobFailure::InvalidOutput(format!("{field} {problem}"))
}

/// The start of a value, quoted and escaped (a NUL shows as `\0`), for messages.
pub(crate) fn shown(v: &str) -> String {
    const SHOWN: usize = 64;
    if v.chars().count() <= SHOWN {
        format!("{v:?}")
    } else {
        let head: String = v.chars().take(SHOWN).collect();
        format!("{head:?}… ({} bytes)", v.len())
    }
}

/// A required string: `min..=max` bytes, without NUL.
pub(crate) fn text(field: &str, v: &str, min: usize, max: usize) -> Result<(), JobFailure> {
    if v.contains('\0') {
        return Err(invalid(
            field,
            format!(
                "{} contains a NUL character, which PostgreSQL cannot store",
                shown(v)
            ),
        ));
    }
    if v.len() < min || v.len() > max {
        return Err(invalid(
            field,
            format!("{} must be {min} to {max} bytes, not {}", shown(v), v.len()),
        ));
    }
    Ok(())
}

/// Whether a JSON value holds a NUL in a string or key (jsonb cannot store `\u0000`).
pub(crate) fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(json_has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// An absolute `http`/`https` URL: what drowl's UI links to, never `javascript:`.
fn web_url(field: &str, v: &str) -> Result<(), JobFailure> {
    text(field, v, 1, MAX_URL_BYTES)?;
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(invalid(
            field,
            format!("{} is not an absolute http or https URL", shown(v)),
        )),
    }
}

impl OutputScope {
    /// Checks that the plugin may emit events for `source`.
    pub(crate) fn source(&self, field: &str, source: &str) -> Result<(), JobFailure> {
        if self.sources.contains(source) {
            return Ok(());
        }
        if let Some(others) = self.contested.get(source) {
            return Err(invalid(
                field,
                format!(
                    "{} is also declared by {}; only a plugin the operator grants it to may emit it (plugins.json `sources`, or --allow-source)",
                    shown(source),
                    others
                        .iter()
                        .map(|o| format!("plugin `{o}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Err(invalid(
            field,
            format!(
                "{} is not declared in the manifest (declared: {})",
                shown(source),
                self.declared.join(", ")
            ),
        ))
    }

    /// Checks that the plugin may report identities on `platform`.
    pub(crate) fn platform(&self, field: &str, platform: &str) -> Result<(), JobFailure> {
        text(field, platform, 1, MAX_PLATFORM_BYTES)?;
        if self.platforms.contains(platform) {
            return Ok(());
        }
        let list = |s: &BTreeSet<String>| {
            if s.is_empty() {
                "none".to_owned()
            } else {
                s.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        Err(invalid(
            field,
            format!(
                "{} is not a platform of plugin `{}` (its platforms: {}); identities on another platform must be granted (plugins.json `platforms`, or --allow-platform)",
                shown(platform),
                self.plugin,
                list(&self.platforms)
            ),
        ))
    }

    /// Checks one identity observation at `field` (`identities[2]`, `events[0].actor`)
    /// and converts it for storage.
    pub(crate) fn identity(
        &self,
        field: &str,
        o: &types::IdentityObservation,
    ) -> Result<IdentityRecord, JobFailure> {
        self.platform(&format!("{field}.platform"), &o.platform)?;
        text(
            &format!("{field}.platform-user-id"),
            &o.platform_user_id,
            1,
            MAX_USER_ID_BYTES,
        )?;
        for (name, v) in [
            ("platform-username", &o.platform_username),
            ("display-name", &o.display_name),
        ] {
            if let Some(v) = v {
                text(&format!("{field}.{name}"), v, 0, MAX_NAME_BYTES)?;
            }
        }
        for (name, v) in [
            ("profile-url", &o.profile_url),
            ("avatar-url", &o.avatar_url),
        ] {
            if let Some(v) = v {
                web_url(&format!("{field}.{name}"), v)?;
            }
        }
        let metadata = match &o.metadata_json {
            None => json!({}),
            Some(m) => {
                let field = format!("{field}.metadata-json");
                let v: serde_json::Value = serde_json::from_str(m)
                    .map_err(|e| invalid(&field, format!("is not JSON: {e}")))?;
                if !v.is_object() {
                    return Err(invalid(&field, "must be a JSON object"));
                }
                if json_has_nul(&v) {
                    return Err(invalid(
                        &field,
                        "contains a NUL character, which PostgreSQL cannot store",
                    ));
                }
                v
            }
        };
        Ok(IdentityRecord {
            platform: o.platform.clone(),
            platform_user_id: o.platform_user_id.clone(),
            platform_username: o.platform_username.clone(),
            display_name: o.display_name.clone(),
            profile_url: o.profile_url.clone(),
            avatar_url: o.avatar_url.clone(),
            metadata,
        })
    }
}

/// Checks an ingestion page's `next-cursor`.
///
/// A cursor holding a secret fails the job rather than being masked: it is stored for the
/// next run and shown in the job's output, and a masked cursor would resume somewhere
/// else. The message never quotes it.
pub(crate) fn cursor(next: Option<&str>, secrets: &Redactor) -> Result<(), JobFailure> {
    let Some(c) = next else { return Ok(()) };
    if secrets.contains_secret(c) {
        return Err(invalid(
            "next-cursor",
            "holds one of the plugin's secrets (or an encoding of one); cursors are stored in plain text and shown in the job output, so keep the secret in config and out of the cursor",
        ));
    }
    text("next-cursor", c, 0, MAX_CURSOR_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> OutputScope {
        OutputScope {
            plugin: "hostile".into(),
            declared: vec!["test".into(), "github".into()],
            sources: ["test".to_owned()].into(),
            contested: [("github".to_owned(), vec!["github".to_owned()])].into(),
            platforms: ["test".to_owned(), "x".to_owned()].into(),
        }
    }

    fn observation(platform: &str) -> types::IdentityObservation {
        types::IdentityObservation {
            platform: platform.into(),
            platform_user_id: "1".into(),
            platform_username: None,
            display_name: None,
            profile_url: None,
            avatar_url: None,
            metadata_json: None,
        }
    }

    fn message(r: Result<impl std::fmt::Debug, JobFailure>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "invalid-output", "{e}");
        e.to_string()
    }

    #[test]
    fn sources_are_owned_declared_or_contested() {
        let s = scope();
        s.source("events[0].source", "test").unwrap();
        let m = message(s.source("events[0].source", "github"));
        assert!(
            m.contains("events[0].source \"github\" is also declared by plugin `github`"),
            "{m}"
        );
        let m = message(s.source("events[1].source", "gitlab"));
        assert!(
            m.contains("events[1].source \"gitlab\" is not declared in the manifest"),
            "{m}"
        );
    }

    #[test]
    fn identities_stay_on_their_platforms_and_fit_the_columns() {
        let s = scope();
        s.identity("identities[0]", &observation("x")).unwrap();
        let m = message(s.identity("events[3].actor", &observation("github")));
        assert!(
            m.contains("events[3].actor.platform \"github\" is not a platform of plugin `hostile`"),
            "{m}"
        );
        type Spoil = fn(&mut types::IdentityObservation);
        let cases: [(&str, Spoil); 8] = [
            ("identities[0].platform-user-id", |o| {
                o.platform_user_id = "a\0b".into();
            }),
            ("identities[0].platform-user-id", |o| {
                o.platform_user_id = String::new();
            }),
            ("identities[0].display-name", |o| {
                o.display_name = Some("Mal\0lory".into());
            }),
            ("identities[0].platform-username", |o| {
                o.platform_username = Some("x".repeat(MAX_NAME_BYTES + 1));
            }),
            ("identities[0].profile-url", |o| {
                o.profile_url = Some("javascript:alert(1)".into());
            }),
            ("identities[0].avatar-url", |o| {
                o.avatar_url = Some("https://a.example/\0".into());
            }),
            ("identities[0].metadata-json", |o| {
                o.metadata_json = Some(r#"{"a":"\u0000"}"#.into());
            }),
            ("identities[0].metadata-json", |o| {
                o.metadata_json = Some("[1]".into());
            }),
        ];
        for (field, spoil) in cases {
            let mut o = observation("test");
            spoil(&mut o);
            let m = message(s.identity("identities[0]", &o));
            assert!(m.contains(field), "{field}: {m}");
        }
        let mut o = observation("test");
        o.profile_url = Some("https://github.com/octocat".into());
        o.metadata_json = Some(r#"{"a":1}"#.into());
        assert_eq!(
            s.identity("identities[0]", &o).unwrap().metadata,
            json!({"a": 1})
        );
    }

    #[test]
    fn cursors_hold_no_secret_and_no_nul() {
        let r = Redactor::new(["ghp_s3cretT0ken"]);
        cursor(None, &r).unwrap();
        cursor(Some("page=2"), &r).unwrap();
        for c in ["ghp_s3cretT0ken", &hex::encode("ghp_s3cretT0ken")] {
            let m = message(cursor(Some(&format!("p=2&t={c}")), &r));
            assert!(
                m.contains("next-cursor holds one of the plugin's secrets"),
                "{m}"
            );
            assert!(!m.contains(c), "{m}");
        }
        let m = message(cursor(Some("2\0"), &r));
        assert!(m.contains("next-cursor \"2\\0\" contains a NUL"), "{m}");
    }

    #[test]
    fn long_values_are_shown_cut() {
        let s = shown(&"é".repeat(1000));
        assert!(s.ends_with("… (2000 bytes)"), "{s}");
        assert!(s.len() < 200);
    }
}
