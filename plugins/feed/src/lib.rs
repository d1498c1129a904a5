//! # feed-plugin
//!
//! A drowl ingestion plugin for syndication feeds — RSS 2.0 (and 0.9x/1.0), Atom and
//! JSON Feed, parsed with feed-rs — as dev.to, Zenn, Qiita, Medium and most blogs
//! publish them. Each run fetches the feed once through the host's HTTP import, with
//! `If-None-Match`/`If-Modified-Since` from the last answer, and maps every entry not
//! handed over before to a drowl event of type `article`, with its author as an
//! identity observation and its title and content as plain text for keyword extraction.
//!
//! Job input: `{"url": "https://zenn.dev/topics/rust/feed"}`, optionally with
//! `"since": "<RFC 3339>"`. The source of the events follows the feed's host: `dev.to`,
//! `zenn` and `qiita` for those platforms, `feed` for every other (see
//! `settings::source_for`). The manifest allows those three platforms' origins; any
//! other feed's origin is granted by the operator (plugins.json `allowHosts`, or
//! `--allow-host`).
//!
//! The cursor and conditional requests are described in `cursor`, parsing (and where a
//! malformed feed is malformed) in `parse`, the mapping in `mapping`. Everything except
//! the few lines below that call the host is plain Rust, unit-tested natively against
//! the fixtures in `fixtures/`.

mod cursor;
mod fetch;
mod mapping;
mod parse;
mod settings;
mod text;

use drowl_plugin_sdk::http::Request;
use drowl_plugin_sdk::log::Level;
use drowl_plugin_sdk::prelude::*;

use settings::Plan;

/// Upper bound for the request; the host caps it further by the job's deadline.
const REQUEST_TIMEOUT_MS: u32 = 30_000;

/// The feed connector. The type only names the plugin for the export macro.
pub struct FeedPlugin;

/// The manifest, kept apart from the trait so it is testable natively.
fn manifest() -> Manifest {
    let mut m = Manifest::builder("feed", "RSS, Atom and JSON Feed", env!("CARGO_PKG_VERSION"))
        .description(
            "Ingests the entries of an RSS, Atom or JSON Feed (dev.to, Zenn, Qiita, Medium, \
             blogs) as articles, with conditional requests, each entry stored once and its \
             author recorded as an identity.",
        )
        .author(
            "drowl",
            None,
            Some("https://example.invalid/drowl/drowl-host"),
        )
        .license("Apache-2.0")
        .capability(Capability::EventIngestion)
        .capability(Capability::Scheduled)
        .min_host_version("0.2.0")
        .config(ConfigField::string("feeds", "Feeds").description(
            "The feeds to ingest, as URLs separated by commas or new lines, e.g. \
                     `https://zenn.dev/topics/rust/feed, https://blog.example.com/index.xml`. \
                     A job naming no `url` reads each of them (one job and cursor per feed); \
                     their origins are the hosts this plugin may reach besides dev.to, Zenn \
                     and Qiita, once the operator grants them. Optional: without it the \
                     plugin reads feeds on dev.to, Zenn and Qiita named by each job.",
        ));
    for source in settings::all_sources() {
        m = m.source(source);
    }
    for (host, _) in settings::PLATFORMS {
        m = m.outbound_host(&format!("https://{host}"));
    }
    m.outbound_host("{{feeds}}").build()
}

impl Ingestion for FeedPlugin {
    fn manifest() -> Manifest {
        manifest()
    }

    fn ingest(req: IngestRequest) -> Result<IngestBatch, JobError> {
        let job = match Plan::from_request(&req.job.input, req.since.as_deref(), &req.config)? {
            Plan::One(job) => job,
            Plan::Each { feeds, since } => return fan_out(&req.job.name, &feeds, since),
        };
        let outcome = fetch::run(&job, req.cursor.as_deref(), chrono::Utc::now, |r| {
            let mut http = Request::get(&r.url).timeout_ms(REQUEST_TIMEOUT_MS);
            for (name, value) in &r.headers {
                http = http.header(name, value);
            }
            http.send()
        })?;
        for warning in &outcome.warnings {
            log::warn(warning);
        }
        let events = outcome.batch.events.len().to_string();
        let received = outcome.received.to_string();
        let message = if outcome.not_modified {
            "feed not modified since the last run"
        } else {
            "fetched a feed"
        };
        log::log(
            Level::Info,
            message,
            &[
                ("url", outcome.url.as_str()),
                ("entries", &received),
                ("new", &events),
            ],
        );
        Ok(outcome.batch)
    }
}

/// A job naming no feed: one follow-up job per configured feed, as a job naming it
/// directly (see [`drowl_plugin_sdk::ingestion::fan_out`]).
fn fan_out(name: &str, feeds: &[url::Url], since: Option<String>) -> Result<IngestBatch, JobError> {
    drowl_plugin_sdk::ingestion::fan_out(
        feeds.iter().map(|feed| {
            (
                format!("{name} {feed}"),
                serde_json::json!({ "url": feed.as_str() }),
            )
        }),
        since.as_deref(),
    )
}

/// What the plugin suggests: every configured feed every 30 minutes (a job naming no
/// `url` fans out over the `feeds` config). The operator enables it by name.
fn default_schedules() -> Vec<DefaultSchedule> {
    vec![
        DefaultSchedule::new(
            "every-30-minutes",
            "*/30 * * * *",
            "event_ingestion",
            "feed-entries",
            &serde_json::json!({}),
        )
        .description("Reads every feed of the `feeds` config twice an hour; conditional requests keep unchanged feeds cheap."),
    ]
}

impl Schedules for FeedPlugin {
    fn default_schedules() -> Vec<DefaultSchedule> {
        default_schedules()
    }
}

// The macro exports the world only when building the wasm component (native unit-test
// builds skip it), so no cfg is needed here.
drowl_plugin_sdk::scheduled_plugin!(FeedPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_describes_the_plugin() {
        let m = manifest();
        assert_eq!(m.id, "feed");
        assert_eq!(m.sources, ["dev.to", "zenn", "qiita", "feed"]);
        assert!(matches!(
            m.capabilities.as_slice(),
            [Capability::EventIngestion, Capability::Scheduled]
        ));
        let suggested = default_schedules();
        assert_eq!(suggested.len(), 1);
        assert_eq!(suggested[0].cron, "*/30 * * * *");
        assert_eq!(suggested[0].job_type, "event_ingestion");
        assert_eq!(
            m.outbound_hosts,
            [
                "https://dev.to",
                "https://zenn.dev",
                "https://qiita.com",
                "{{feeds}}"
            ]
        );
        assert_eq!(m.config.len(), 1);
        assert_eq!(m.config[0].key, "feeds");
        assert!(!m.config[0].required, "feeds is optional");
        assert!(matches!(m.config[0].field_type, FieldType::String));
    }
}
