//! Typed builders for manifests and events, so plugins cannot forget a required field.

use crate::{
    Author, Capability, ConfigField, Event, FieldType, IdentityObservation, Manifest,
    ResourceRequest,
};

/// Builds a [`Manifest`]; start with [`Manifest::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ManifestBuilder(Manifest);

impl Manifest {
    /// Starts a manifest. `id` must be kebab-case; `version` is the plugin's semver
    /// (usually `env!("CARGO_PKG_VERSION")`).
    pub fn builder(id: &str, name: &str, version: &str) -> ManifestBuilder {
        ManifestBuilder(Manifest {
            id: id.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            description: String::new(),
            author: Author {
                name: String::new(),
                email: None,
                url: None,
            },
            capabilities: Vec::new(),
            sources: Vec::new(),
            config: Vec::new(),
            outbound_hosts: Vec::new(),
            min_host_version: "0.1.0".to_owned(),
            resources: ResourceRequest {
                max_memory_bytes: None,
                timeout_ms: None,
                max_http_requests: None,
            },
            license: None,
            homepage: None,
        })
    }
}

impl ManifestBuilder {
    /// What the plugin does.
    pub fn description(mut self, d: &str) -> Self {
        self.0.description = d.to_owned();
        self
    }
    /// The author.
    pub fn author(mut self, name: &str, email: Option<&str>, url: Option<&str>) -> Self {
        self.0.author = Author {
            name: name.to_owned(),
            email: email.map(str::to_owned),
            url: url.map(str::to_owned),
        };
        self
    }
    /// Adds a capability.
    pub fn capability(mut self, c: Capability) -> Self {
        self.0.capabilities.push(c);
        self
    }
    /// Adds an event source this plugin emits.
    pub fn source(mut self, s: &str) -> Self {
        self.0.sources.push(s.to_owned());
        self
    }
    /// Adds a configuration field.
    pub fn config(mut self, f: impl Into<ConfigField>) -> Self {
        self.0.config.push(f.into());
        self
    }
    /// Declares an outbound origin, `scheme://host[:port]`. `{{key}}` is replaced by the
    /// origin of the URL in config field `key`, so a base URL can be configured; when the
    /// field lists several URLs (separated by commas or whitespace), by each one's origin.
    pub fn outbound_host(mut self, h: &str) -> Self {
        self.0.outbound_hosts.push(h.to_owned());
        self
    }
    /// The oldest drowl-host version this plugin works with.
    pub fn min_host_version(mut self, v: &str) -> Self {
        self.0.min_host_version = v.to_owned();
        self
    }
    /// Asks for a memory budget (capped by the operator).
    pub fn max_memory_bytes(mut self, n: u64) -> Self {
        self.0.resources.max_memory_bytes = Some(n);
        self
    }
    /// Asks for a per-call time budget (capped by the operator).
    pub fn timeout_ms(mut self, n: u64) -> Self {
        self.0.resources.timeout_ms = Some(n);
        self
    }
    /// Asks for an HTTP request budget per job (capped by the operator).
    pub fn max_http_requests(mut self, n: u32) -> Self {
        self.0.resources.max_http_requests = Some(n);
        self
    }
    /// The licence (SPDX).
    pub fn license(mut self, l: &str) -> Self {
        self.0.license = Some(l.to_owned());
        self
    }
    /// The project's home page.
    pub fn homepage(mut self, h: &str) -> Self {
        self.0.homepage = Some(h.to_owned());
        self
    }
    /// Finishes the manifest.
    pub fn build(self) -> Manifest {
        self.0
    }
}

/// Builds a [`ConfigField`]; start with [`ConfigField::string`] and friends.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigFieldBuilder(ConfigField);

impl ConfigField {
    /// A field of any type.
    pub fn of_type(key: &str, label: &str, field_type: FieldType) -> ConfigFieldBuilder {
        ConfigFieldBuilder(ConfigField {
            key: key.to_owned(),
            label: label.to_owned(),
            field_type,
            description: String::new(),
            required: false,
            default: None,
        })
    }
    /// A text field.
    pub fn string(key: &str, label: &str) -> ConfigFieldBuilder {
        Self::of_type(key, label, FieldType::String)
    }
    /// A secret (tokens, passwords): never logged, only readable via `config::secret`.
    pub fn secret(key: &str, label: &str) -> ConfigFieldBuilder {
        Self::of_type(key, label, FieldType::Secret)
    }
    /// A URL field.
    pub fn url(key: &str, label: &str) -> ConfigFieldBuilder {
        Self::of_type(key, label, FieldType::Url)
    }
    /// A number field.
    pub fn number(key: &str, label: &str) -> ConfigFieldBuilder {
        Self::of_type(key, label, FieldType::Number)
    }
    /// A boolean field.
    pub fn boolean(key: &str, label: &str) -> ConfigFieldBuilder {
        Self::of_type(key, label, FieldType::Boolean)
    }
}

impl ConfigFieldBuilder {
    /// What the field does.
    pub fn description(mut self, d: &str) -> Self {
        self.0.description = d.to_owned();
        self
    }
    /// The plugin refuses to run without it.
    pub fn required(mut self) -> Self {
        self.0.required = true;
        self
    }
    /// The value used when the operator sets none.
    pub fn default_value(mut self, v: &str) -> Self {
        self.0.default = Some(v.to_owned());
        self
    }
}

impl From<ConfigFieldBuilder> for ConfigField {
    fn from(b: ConfigFieldBuilder) -> Self {
        b.0
    }
}

/// Builds an [`Event`]; start with [`Event::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder(Event);

impl Event {
    /// Starts an event. `occurred_at` is RFC 3339; `source` must be one the manifest declares.
    pub fn builder(
        external_id: &str,
        source: &str,
        event_type: &str,
        occurred_at: &str,
    ) -> EventBuilder {
        EventBuilder(Event {
            external_id: external_id.to_owned(),
            source: source.to_owned(),
            event_type: event_type.to_owned(),
            occurred_at: occurred_at.to_owned(),
            actor: None,
            text: None,
            payload: "{}".to_owned(),
        })
    }
}

impl EventBuilder {
    /// Who did it.
    pub fn actor(mut self, a: IdentityObservation) -> Self {
        self.0.actor = Some(a);
        self
    }
    /// The human-written text, for enrichment.
    pub fn text(mut self, t: &str) -> Self {
        self.0.text = Some(t.to_owned());
        self
    }
    /// The raw payload, as received (already JSON text).
    pub fn payload_raw(mut self, json: String) -> Self {
        self.0.payload = json;
        self
    }
    /// The raw payload, serialised from a JSON value.
    pub fn payload_json(mut self, v: &serde_json::Value) -> Self {
        self.0.payload = v.to_string();
        self
    }
    /// Finishes the event.
    pub fn build(self) -> Event {
        self.0
    }
}

impl IdentityObservation {
    /// An account on `platform` with the platform's stable id.
    pub fn new(platform: &str, platform_user_id: &str) -> Self {
        Self {
            platform: platform.to_owned(),
            platform_user_id: platform_user_id.to_owned(),
            platform_username: None,
            display_name: None,
            profile_url: None,
            avatar_url: None,
            metadata_json: None,
        }
    }
    /// Sets the handle.
    #[must_use]
    pub fn username(mut self, u: &str) -> Self {
        self.platform_username = Some(u.to_owned());
        self
    }
    /// Sets the display name.
    #[must_use]
    pub fn display_name(mut self, n: &str) -> Self {
        self.display_name = Some(n.to_owned());
        self
    }
    /// Sets the profile URL.
    #[must_use]
    pub fn profile_url(mut self, u: &str) -> Self {
        self.profile_url = Some(u.to_owned());
        self
    }
    /// Sets the avatar URL.
    #[must_use]
    pub fn avatar_url(mut self, u: &str) -> Self {
        self.avatar_url = Some(u.to_owned());
        self
    }
}
