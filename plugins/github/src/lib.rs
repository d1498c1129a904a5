//! # github-plugin
//!
//! A drowl connector for GitHub. It reads the public activity of a user, an organisation
//! or a repository from the REST events API (`/users/{user}/events/public`,
//! `/orgs/{org}/events`, `/repos/{owner}/{repo}/events`) through the host's HTTP import,
//! one page per `ingest` call, and it receives GitHub's webhook deliveries (`push`,
//! `issues`, `issue_comment`, `pull_request`, `release`, `star`, `watch`, `fork`), which
//! the host verifies with the `webhook-secret` config field before `handle` sees them.
//! Either way each activity becomes a drowl event (source `github`) with its actor as an
//! identity observation.
//!
//! Job input: `{"user": "octocat"}`, `{"repo": "owner/name"}` or `{"org": "name"}`,
//! optionally with `"since": "<RFC 3339>"`. A job naming none (drowl's `github-events`
//! job: `{pluginId, source, since}`) enqueues one such job per entry of the `targets`
//! config field. Configuration: `api-base-url` (default
//! `https://api.github.com`), `token` (secret, optional), `per-page` (1–100, default 30)
//! and `webhook-secret` (secret, optional: only deliveries need it).
//!
//! Paging and the cursor are described in the `sweep` and `cursor` modules, the mapping in
//! `mapping`, deliveries in [`webhooks`]. Everything except the few lines below that call
//! the host is plain Rust, unit-tested natively against the recorded fixtures in
//! `fixtures/` and GitHub's example deliveries.

mod cursor;
mod event_id;
mod http_util;
mod mapping;
mod settings;
mod sweep;
mod time;
pub mod webhooks;

use drowl_plugin_sdk::http::Request;
use drowl_plugin_sdk::log::Level;
use drowl_plugin_sdk::prelude::*;

use settings::{DEFAULT_API_BASE_URL, Plan, Settings, Target};

/// Upper bound for one page request; the host caps it further by the job's deadline.
const REQUEST_TIMEOUT_MS: u32 = 30_000;

/// The GitHub connector. The type only names the plugin for the export macro.
pub struct GithubPlugin;

/// The manifest, kept apart from the trait so it is testable natively.
fn manifest() -> Manifest {
    Manifest::builder("github", "GitHub", env!("CARGO_PKG_VERSION"))
        .description(
            "Ingests the public activity of a GitHub user, organization or repository \
             from the GitHub REST events API, and receives GitHub webhook deliveries \
             (pushes, issues, comments, pull requests, releases, stars and forks), \
             keeping each event's raw payload and recording its actor as an identity.",
        )
        .author(
            "drowl",
            None,
            Some("https://example.invalid/drowl/drowl-host"),
        )
        .license("Apache-2.0")
        // Receiving deliveries needs contract 0.2.0's `webhooks`, which hosts serve from 0.2.0.
        .min_host_version("0.2.0")
        .capability(Capability::EventIngestion)
        .capability(Capability::Webhook)
        .capability(Capability::Scheduled)
        .source(mapping::SOURCE)
        .config(
            ConfigField::url("api-base-url", "API base URL")
                .description(
                    "Root of the GitHub REST API; change it for GitHub Enterprise Server \
                     (https://HOST/api/v3) or a local fixture server.",
                )
                .default_value(DEFAULT_API_BASE_URL),
        )
        .config(ConfigField::secret("token", "Access token").description(
            "Optional GitHub token, sent as `Authorization: Bearer`; raises the rate \
             limit from 60 to 5000 requests per hour.",
        ))
        .config(
            ConfigField::string("targets", "Tracked targets").description(
                "What a job naming no `user`, `repo` or `org` ingests: `users/NAME`, \
                     `orgs/NAME` or `repos/OWNER/NAME`, separated by commas, e.g. \
                     `users/octocat, orgs/drowl-dev, repos/octocat/Hello-World`. Each gets \
                     its own job and cursor.",
            ),
        )
        .config(
            ConfigField::number("per-page", "Events per page")
                .description("Events requested per page, 1 to 100.")
                .default_value("30"),
        )
        .config(
            ConfigField::secret("webhook-secret", "Webhook secret").description(
                "The secret set on the GitHub webhook; drowl-host verifies each \
                 delivery's X-Hub-Signature-256 with it before storing the delivery. \
                 Only webhook deliveries need it; polling the events API does not.",
            ),
        )
        .outbound_host(DEFAULT_API_BASE_URL)
        .outbound_host("{{api-base-url}}")
        .build()
}

impl Ingestion for GithubPlugin {
    fn manifest() -> Manifest {
        manifest()
    }

    fn ingest(req: IngestRequest) -> Result<IngestBatch, JobError> {
        let settings = Settings::from_config(&req.config)?;
        let job = match Plan::from_request(&req.job.input, req.since.as_deref(), &req.config)? {
            Plan::One(job) => job,
            Plan::Each { targets, since } => return fan_out(&req.job.name, &targets, since),
        };
        let token = config::secret("token");
        let outcome = sweep::run_page(
            &settings,
            &job,
            token.as_deref(),
            req.cursor.as_deref(),
            |r| {
                let mut http = Request::get(&r.url).timeout_ms(REQUEST_TIMEOUT_MS);
                for (name, value) in &r.headers {
                    http = http.header(name, value);
                }
                http.send()
            },
        )?;
        for warning in &outcome.warnings {
            log::warn(warning);
        }
        let events = outcome.batch.events.len().to_string();
        let received = outcome.received.to_string();
        let end = outcome
            .end
            .map_or_else(|| "more pages".to_owned(), |e| format!("{e:?}"));
        log::log(
            Level::Info,
            "fetched a page of GitHub events",
            &[
                ("url", outcome.url.as_str()),
                ("received", &received),
                ("events", &events),
                ("sweep", &end),
            ],
        );
        Ok(outcome.batch)
    }
}

impl Webhook for GithubPlugin {
    fn spec() -> WebhookSpec {
        WebhookSpec::github()
    }

    fn handle(delivery: Delivery) -> Result<DeliveryResult, JobError> {
        let result = webhooks::map_delivery(&delivery)?;
        let events = result.events.len().to_string();
        log::log(
            Level::Info,
            "handled a GitHub webhook delivery",
            &[
                ("delivery", delivery.delivery_id.as_str()),
                ("event", delivery.event.as_deref().unwrap_or("")),
                ("events", &events),
            ],
        );
        Ok(result)
    }
}

/// A job naming no target: one follow-up job per configured target, as a job naming it
/// directly (see [`drowl_plugin_sdk::ingestion::fan_out`]).
fn fan_out(name: &str, targets: &[Target], since: Option<String>) -> Result<IngestBatch, JobError> {
    drowl_plugin_sdk::ingestion::fan_out(
        targets.iter().map(|target| {
            let (key, value) = target.input_key();
            (
                format!("{name} {key}:{value}"),
                serde_json::json!({ key: value, "source": mapping::SOURCE }),
            )
        }),
        since.as_deref(),
    )
}

// The macro exports the connector world (ingestion and webhooks) only when building the
// wasm component (native unit-test builds skip it), so no cfg is needed here.
/// What the plugin suggests: drowl's `github-events` job every hour, which (naming no
/// target) reads every entry of the `targets` config, each from its own cursor. The
/// operator enables it by name.
pub fn default_schedules() -> Vec<DefaultSchedule> {
    vec![
        DefaultSchedule::new(
            "hourly",
            "0 * * * *",
            "event_ingestion",
            "github-events",
            &serde_json::json!({ "source": "github" }),
        )
        .description("Ingests every configured target (`targets`) once an hour."),
    ]
}

impl Schedules for GithubPlugin {
    fn default_schedules() -> Vec<DefaultSchedule> {
        default_schedules()
    }
}

drowl_plugin_sdk::connector_plugin!(GithubPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_describes_the_plugin() {
        let m = manifest();
        assert_eq!(m.id, "github");
        assert_eq!(m.sources, ["github"]);
        assert_eq!(m.min_host_version, "0.2.0");
        assert!(matches!(
            m.capabilities.as_slice(),
            [
                Capability::EventIngestion,
                Capability::Webhook,
                Capability::Scheduled
            ]
        ));
        assert_eq!(
            m.outbound_hosts,
            ["https://api.github.com", "{{api-base-url}}"]
        );
        assert!(!m.description.is_empty() && !m.author.name.is_empty());
        let field = |k: &str| {
            m.config
                .iter()
                .find(|f| f.key == k)
                .unwrap_or_else(|| panic!("{k}"))
        };
        assert!(matches!(field("api-base-url").field_type, FieldType::Url));
        assert_eq!(
            field("api-base-url").default.as_deref(),
            Some("https://api.github.com")
        );
        assert!(matches!(field("token").field_type, FieldType::Secret));
        assert!(!field("token").required);
        assert!(matches!(field("per-page").field_type, FieldType::Number));
        assert_eq!(field("per-page").default.as_deref(), Some("30"));
        // The host reads this field to verify deliveries; polling must work without it.
        assert!(matches!(
            field("webhook-secret").field_type,
            FieldType::Secret
        ));
        assert!(!field("webhook-secret").required);
        assert_eq!(field("webhook-secret").default, None);
    }

    #[test]
    fn deliveries_are_verified_as_github_signs_them() {
        let spec = <GithubPlugin as Webhook>::spec();
        assert!(matches!(
            spec.verification,
            drowl_plugin_sdk::webhook::Verification::GithubSignature
        ));
        assert_eq!(spec.delivery_id_header, "x-github-delivery");
        assert_eq!(spec.event_header.as_deref(), Some("x-github-event"));
    }
}
