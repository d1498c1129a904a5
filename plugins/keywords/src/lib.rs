//! drowl's first-party keyword extraction plugin.
//!
//! Given stored events and the keywords being tracked, it finds each keyword (or one of
//! its synonyms) in the event's text with drowl's match strategies: exact, word
//! boundary, substring and regex, always case-insensitive and Unicode-aware, so Japanese
//! posts from Zenn and Qiita match as well as English ones (see [`matcher`]).

pub mod matcher;

use drowl_plugin_sdk::enrichment::{
    EnrichRequest, EnrichResult, Enrichment, KeywordMatch, MatchStrategy,
};
use drowl_plugin_sdk::{Capability, JobError, Manifest, StoredEvent, log};

use std::cell::RefCell;
use std::rc::Rc;

use matcher::{KeywordSpec, Matcher, MatcherError, Strategy};

/// Payload fields read when an event carries no extracted text.
const FALLBACK_FIELDS: &[&str] = &["title", "body", "description", "message", "content", "text"];

/// The plugin.
pub struct Keywords;

impl Enrichment for Keywords {
    fn manifest() -> Manifest {
        Manifest::builder("keywords", "Keyword extraction", env!("CARGO_PKG_VERSION"))
            .description(
                "Finds tracked keywords and their synonyms in event text: exact, word-boundary, \
                 substring and regex matching, case-insensitive and Unicode-aware (CJK included).",
            )
            .author("drowl", None, Some("https://example.invalid/drowl"))
            .capability(Capability::KeywordExtraction)
            .license("Apache-2.0")
            .build()
    }

    fn enrich(req: EnrichRequest) -> Result<EnrichResult, JobError> {
        let specs: Vec<KeywordSpec> = req
            .keywords
            .iter()
            .map(|k| KeywordSpec {
                id: k.id.clone(),
                term: k.term.clone(),
                strategy: match k.strategy {
                    MatchStrategy::Exact => Strategy::Exact,
                    MatchStrategy::WordBoundary => Strategy::WordBoundary,
                    MatchStrategy::Substring => Strategy::Substring,
                    MatchStrategy::Regex => Strategy::Regex,
                },
                regex_pattern: k.regex_pattern.clone(),
                synonyms: k.synonyms.clone(),
            })
            .collect();
        let compiled = compiled(specs);
        let (matcher, problems) = (&compiled.matcher, &compiled.problems);
        if matcher.is_empty() && !compiled.specs.is_empty() {
            return Err(JobError::permanent(format!(
                "none of the {} keywords is usable; first problem: {}",
                compiled.specs.len(),
                problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )));
        }
        let mut keyword_matches = Vec::new();
        for event in &req.events {
            let Some(text) = event_text(event) else {
                continue;
            };
            for m in matcher.find(&text) {
                keyword_matches.push(KeywordMatch {
                    event_id: event.id.clone(),
                    keyword_id: m.keyword_id,
                    matched_text: m.matched_text,
                    position: m.position,
                    occurrences: m.occurrences,
                });
            }
        }
        Ok(EnrichResult {
            keyword_matches,
            identities: Vec::new(),
            links: Vec::new(),
        })
    }
}

/// A job's keywords, compiled, with the problems of those that could not be.
struct Compiled {
    specs: Vec<KeywordSpec>,
    matcher: Matcher,
    problems: Vec<MatcherError>,
}

thread_local! {
    /// The keywords the last call compiled. A job sends the same keywords with every page
    /// of events, and compiling 50 of them costs more than matching a page of 500 events
    /// (issue #14's profile): so they are compiled once per job, not once per page. An
    /// instance runs one job and is then dropped, so nothing here outlives the job.
    static LAST: RefCell<Option<Rc<Compiled>>> = const { RefCell::new(None) };
}

/// `specs` compiled: the last call's matcher when it had the same keywords, else a new
/// one. One broken keyword (a bad regex in the keywords table) must not stop the others
/// from being tracked: it is reported (once per job) and skipped.
fn compiled(specs: Vec<KeywordSpec>) -> Rc<Compiled> {
    LAST.with_borrow_mut(|last| {
        if let Some(c) = last.as_ref().filter(|c| c.specs == specs) {
            return Rc::clone(c);
        }
        let (matcher, problems) = Matcher::new_lenient(&specs);
        for p in &problems {
            log::log(
                log::Level::Warn,
                &format!("keyword skipped: {p}"),
                &[("keyword", p.keyword_id())],
            );
        }
        let c = Rc::new(Compiled {
            specs,
            matcher,
            problems,
        });
        *last = Some(Rc::clone(&c));
        c
    })
}

/// The text to search: what the ingesting plugin extracted, or else the usual
/// human-written fields of the raw payload.
fn event_text(e: &StoredEvent) -> Option<String> {
    if let Some(t) = e.event.text.as_ref().filter(|t| !t.trim().is_empty()) {
        return Some(t.clone());
    }
    let payload: serde_json::Value = serde_json::from_str(&e.event.payload).ok()?;
    let parts: Vec<&str> = FALLBACK_FIELDS
        .iter()
        .filter_map(|f| payload.get(*f).and_then(serde_json::Value::as_str))
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n"))
    }
}

drowl_plugin_sdk::enrichment_plugin!(Keywords);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, term: &str) -> KeywordSpec {
        KeywordSpec {
            id: id.into(),
            term: term.into(),
            strategy: Strategy::WordBoundary,
            regex_pattern: None,
            synonyms: Vec::new(),
        }
    }

    #[test]
    fn a_job_compiles_its_keywords_once_and_other_keywords_anew() {
        let first = compiled(vec![spec("kw-1", "Rust")]);
        let same = compiled(vec![spec("kw-1", "Rust")]);
        assert!(
            Rc::ptr_eq(&first, &same),
            "the same keywords were compiled again"
        );
        let other = compiled(vec![spec("kw-1", "Go")]);
        assert!(
            !Rc::ptr_eq(&first, &other),
            "other keywords reused a stale matcher"
        );
        assert_eq!(other.matcher.find("written in Go").len(), 1);
        assert!(other.matcher.find("written in Rust").is_empty());
        // (Only valid keywords here: a broken one is logged through the host's log
        // import, which exists only inside the component.)
    }
}
