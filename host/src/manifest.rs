//! The host's view of a plugin manifest, converted from the WIT record and validated.
//!
//! Validation happens once, at load: a plugin whose manifest is wrong is refused before
//! any job reaches it, with a message that names the field.

use serde::{Deserialize, Serialize};

use crate::bindings::types as wit;
use crate::ids::validate_plugin_id;

/// The default of the largest manifest accepted, serialised as JSON, in bytes: a real
/// manifest is a few KiB, so this leaves room for long descriptions and config schemas
/// while a manifest that carries data is refused. Operators set their own with
/// `--max-manifest-bytes` ([`crate::runtime::EngineSettings::max_manifest_bytes`]).
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 256 << 10;

/// A configuration field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Free text.
    String,
    /// A number (integer or decimal).
    Number,
    /// `true` or `false`.
    Boolean,
    /// Never logged or returned; readable only through `config.secret`.
    Secret,
    /// An absolute `http`/`https` URL.
    Url,
    /// An e-mail address.
    Email,
    /// A JSON document.
    Json,
    /// A JSON array.
    Array,
}

/// One configuration field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigField {
    /// The key operators set.
    pub key: String,
    /// Short label.
    pub label: String,
    /// Its type; values are checked against it.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// What it does.
    pub description: String,
    /// Whether the plugin refuses to run without it.
    pub required: bool,
    /// Default value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// The plugin's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Web site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Budgets the plugin asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequest {
    /// Linear memory in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// Time per job in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// HTTP requests per job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_http_requests: Option<u32>,
}

/// A validated manifest, in the JSON shape drowl's `plugins.manifest` column uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Kebab-case id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Semver.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Who wrote it.
    pub author: Author,
    /// drowl capability names (`event_ingestion`, ...).
    pub capabilities: Vec<String>,
    /// Event sources it may emit.
    pub sources: Vec<String>,
    /// Configuration schema.
    pub config: Vec<ConfigField>,
    /// Outbound origins it needs (`{{key}}` templates allowed).
    pub outbound_hosts: Vec<String>,
    /// Oldest compatible drowl-host.
    pub min_host_version: String,
    /// Requested budgets.
    pub resources: ResourceRequest,
    /// SPDX licence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Home page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// How its webhook deliveries are verified and identified, when it receives them
    /// (contract 0.2.0's `webhooks.spec`, read at load with the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
    /// Schedules it suggests, which the operator may enable by name (contract 0.2.0's
    /// `schedules.defaults`, read at load with the manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_schedules: Vec<DefaultSchedule>,
}

/// A schedule a plugin suggests; the operator enables it by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultSchedule {
    /// Unique within the plugin.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Cron expression.
    pub cron: String,
    /// IANA zone; UTC when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// drowl job type of each run.
    pub job_type: String,
    /// Job name of each run.
    pub job_name: String,
    /// The job's input as JSON text (the host sets `pluginId`).
    pub input: String,
}

impl From<crate::bindings::scheduled::exports::drowl::plugin0_2_0::schedules::DefaultSchedule>
    for DefaultSchedule
{
    fn from(
        d: crate::bindings::scheduled::exports::drowl::plugin0_2_0::schedules::DefaultSchedule,
    ) -> Self {
        Self {
            name: d.name,
            description: d.description,
            cron: d.cron,
            tz: d.tz,
            job_type: d.job_type,
            job_name: d.job_name,
            input: d.input,
        }
    }
}

/// How a delivery's signature is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Verification {
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>`.
    GithubSignature,
    /// A hex HMAC-SHA256 of the body in `header`, after `prefix`.
    HmacSha256 {
        /// Header name, compared case-insensitively.
        header: String,
        /// What precedes the digest.
        prefix: String,
    },
}

/// What a plugin's webhook endpoint expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// How deliveries are verified.
    pub verification: Verification,
    /// The header with each delivery's unique id.
    pub delivery_id_header: String,
    /// The header naming the kind of delivery, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_header: Option<String>,
}

impl From<crate::bindings::webhook::exports::drowl::plugin0_2_0::webhooks::WebhookSpec>
    for WebhookSpec
{
    fn from(
        s: crate::bindings::webhook::exports::drowl::plugin0_2_0::webhooks::WebhookSpec,
    ) -> Self {
        use crate::bindings::webhook::exports::drowl::plugin0_2_0::webhooks::Verification as V;
        Self {
            verification: match s.verification {
                V::GithubSignature => Verification::GithubSignature,
                V::HmacSha256(h) => Verification::HmacSha256 {
                    header: h.header,
                    prefix: h.prefix,
                },
            },
            delivery_id_header: s.delivery_id_header,
            event_header: s.event_header,
        }
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest field `{field}`: {problem}")]
pub struct ManifestError {
    /// The field at fault.
    pub field: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn bad(field: impl Into<String>, problem: impl Into<String>) -> ManifestError {
    ManifestError {
        field: field.into(),
        problem: problem.into(),
    }
}

impl From<wit::Manifest> for Manifest {
    fn from(m: wit::Manifest) -> Self {
        Self {
            id: m.id,
            name: m.name,
            version: m.version,
            description: m.description,
            author: Author {
                name: m.author.name,
                email: m.author.email,
                url: m.author.url,
            },
            capabilities: m
                .capabilities
                .into_iter()
                .map(capability_name)
                .map(str::to_owned)
                .collect(),
            sources: m.sources,
            config: m.config.into_iter().map(ConfigField::from).collect(),
            outbound_hosts: m.outbound_hosts,
            min_host_version: m.min_host_version,
            resources: ResourceRequest {
                max_memory_bytes: m.resources.max_memory_bytes,
                timeout_ms: m.resources.timeout_ms,
                max_http_requests: m.resources.max_http_requests,
            },
            license: m.license,
            homepage: m.homepage,
            webhook: None,
            default_schedules: Vec::new(),
        }
    }
}

impl From<wit::ConfigField> for ConfigField {
    fn from(f: wit::ConfigField) -> Self {
        Self {
            key: f.key,
            label: f.label,
            field_type: match f.field_type {
                wit::FieldType::String => FieldType::String,
                wit::FieldType::Number => FieldType::Number,
                wit::FieldType::Boolean => FieldType::Boolean,
                wit::FieldType::Secret => FieldType::Secret,
                wit::FieldType::Url => FieldType::Url,
                wit::FieldType::Email => FieldType::Email,
                wit::FieldType::Json => FieldType::Json,
                wit::FieldType::Array => FieldType::Array,
            },
            description: f.description,
            required: f.required,
            default: f.default,
        }
    }
}

/// drowl's name for a capability, as the `plugins` table and the API spell it.
pub fn capability_name(c: wit::Capability) -> &'static str {
    match c {
        wit::Capability::EventIngestion => "event_ingestion",
        wit::Capability::IdentityResolution => "identity_resolution",
        wit::Capability::KeywordExtraction => "keyword_extraction",
        wit::Capability::Analytics => "analytics",
        wit::Capability::Export => "export",
        wit::Capability::Webhook => "webhook",
        wit::Capability::Scheduled => "scheduled",
    }
}

fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s.starts_with('.')
        && !s.contains("..")
}

impl Manifest {
    /// Checks every field; `host_version` is this host's semver and `max_bytes` the
    /// largest manifest (serialised as JSON) the operator accepts.
    pub fn validate(&self, host_version: &str, max_bytes: usize) -> Result<(), ManifestError> {
        // The manifest is kept for the plugin's lifetime, printed by `plugin check` and
        // (with drowl's plugins table) stored: a real one is a few KiB.
        let size = serde_json::to_vec(self).map_or(usize::MAX, |v| v.len());
        if size > max_bytes {
            return Err(bad(
                "manifest",
                format!(
                    "is {size} bytes; the limit is {max_bytes} (describe returns names, descriptions and config fields, not data; an operator can raise it with --max-manifest-bytes)"
                ),
            ));
        }
        validate_plugin_id(&self.id).map_err(|e| bad("id", e.to_string()))?;
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        semver::Version::parse(&self.version)
            .map_err(|e| bad("version", format!("{:?} is not semver: {e}", self.version)))?;
        let min = semver::Version::parse(&self.min_host_version).map_err(|e| {
            bad(
                "min-host-version",
                format!("{:?} is not semver: {e}", self.min_host_version),
            )
        })?;
        let host = semver::Version::parse(host_version)
            .map_err(|e| bad("min-host-version", format!("host version unparsable: {e}")))?;
        if min > host {
            return Err(bad(
                "min-host-version",
                format!("the plugin needs drowl-host {min} or newer; this is {host}"),
            ));
        }
        for s in &self.sources {
            if !valid_source(s) {
                return Err(bad(
                    "sources",
                    format!("{s:?} is not a source name (lowercase letters, digits, `.` and `-`)"),
                ));
            }
        }
        let mut keys = std::collections::HashSet::new();
        for f in &self.config {
            if f.key.is_empty()
                || f.key.len() > 64
                || !f
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("config", format!("{:?} is not a valid key", f.key)));
            }
            if !keys.insert(f.key.as_str()) {
                return Err(bad("config", format!("key {:?} is declared twice", f.key)));
            }
            if f.field_type == FieldType::Secret && f.default.is_some() {
                return Err(bad(
                    "config",
                    format!("secret {:?} must not have a default", f.key),
                ));
            }
        }
        Ok(())
    }

    /// The declared config field for `key`.
    pub fn field(&self, key: &str) -> Option<&ConfigField> {
        self.config.iter().find(|f| f.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            id: "github".into(),
            name: "GitHub".into(),
            version: "0.1.0".into(),
            description: String::new(),
            author: Author {
                name: "drowl".into(),
                email: None,
                url: None,
            },
            capabilities: vec!["event_ingestion".into()],
            sources: vec!["github".into(), "dev.to".into()],
            config: vec![],
            outbound_hosts: vec![],
            min_host_version: "0.1.0".into(),
            resources: ResourceRequest::default(),
            license: None,
            homepage: None,
            webhook: None,
            default_schedules: Vec::new(),
        }
    }

    #[test]
    fn an_oversized_manifest_is_refused_naming_its_size() {
        let mut m = sample();
        m.description = "d".repeat(48 << 20);
        let e = m.validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES).unwrap_err();
        assert_eq!(e.field, "manifest");
        assert!(e.problem.contains("the limit is 262144"), "{}", e.problem);
        m.description = "d".repeat(4096);
        m.validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES).unwrap();
        // The operator's own limit applies instead of the default.
        let e = m.validate("0.1.0", 1024).unwrap_err();
        assert!(e.problem.contains("the limit is 1024"), "{}", e.problem);
        assert!(e.problem.contains("--max-manifest-bytes"), "{}", e.problem);
    }

    #[test]
    fn a_good_manifest_passes() {
        sample()
            .validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES)
            .unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut m = sample();
        m.id = "Git Hub".into();
        assert_eq!(
            m.validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES)
                .unwrap_err()
                .field,
            "id"
        );
        let mut m = sample();
        m.version = "one".into();
        assert_eq!(
            m.validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES)
                .unwrap_err()
                .field,
            "version"
        );
        let mut m = sample();
        m.min_host_version = "9.0.0".into();
        let e = m.validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES).unwrap_err();
        assert!(e.to_string().contains("needs drowl-host 9.0.0"), "{e}");
        let mut m = sample();
        m.sources = vec!["../x".into()];
        assert_eq!(
            m.validate("0.1.0", DEFAULT_MAX_MANIFEST_BYTES)
                .unwrap_err()
                .field,
            "sources"
        );
    }
}
