//! `keyword_extraction` (and plugin-backed `identity_resolution`): read stored events in
//! pages, hand each page to an enrichment plugin, store what it derives idempotently.
//!
//! Keywords named in a job's input only *select* what to match: they are resolved to rows
//! of drowl's `keywords` table by term, and a job never writes that table. Anyone who can
//! enqueue a job (or a plugin, through a follow-up) could otherwise rename, retarget or
//! invent the keywords drowl tracks (security matrix row 28).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;
use sha2::{Digest, Sha256};

pub use super::events::{EVENTS_PER_CALL, filter_from_input, to_wit_event};
use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{JobFailure, JobRequest};
use super::output::{self, OutputScope};
use super::registry::ReadyPlugin;
use crate::bindings::enrichment::exports::drowl::plugin::enrichment as wit;
use crate::capabilities::PluginInstance;
use crate::runtime::Role;
use crate::storage::{
    EventFilter, IdentityLinkRecord, IdentityRecord, KeywordMatchRecord, KeywordRecord, Storage,
};

/// The id an inline term is matched under while no tracked keyword has that term.
///
/// It names no row: matches under it are counted in the job's output and never stored. It
/// is stable so that a job's output reads the same on every run, and its `untracked_`
/// prefix keeps it apart from the ids drowl gives its keywords.
pub fn keyword_id_for_term(term: &str) -> String {
    format!(
        "untracked_{}",
        hex::encode(&Sha256::digest(term.trim().to_lowercase().as_bytes())[..8])
    )
}

/// Reads `input.keywords`: strings, or objects in drowl's keyword shape.
///
/// Each record's id is [`keyword_id_for_term`]: an `id` in the input is ignored, because
/// which row a term means is decided by [`resolve_keywords`], never by the job.
pub fn keywords_from_input(
    input: &serde_json::Value,
) -> Result<Option<Vec<KeywordRecord>>, JobFailure> {
    let Some(list) = input.get("keywords") else {
        return Ok(None);
    };
    let list = list
        .as_array()
        .ok_or_else(|| JobFailure::InvalidJob("input.keywords must be an array".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, k) in list.iter().enumerate() {
        let rec = match k {
            serde_json::Value::String(term) if !term.trim().is_empty() => KeywordRecord {
                id: keyword_id_for_term(term),
                term: term.trim().to_owned(),
                category: "custom".into(),
                match_strategy: "word_boundary".into(),
                regex_pattern: None,
                synonyms: Vec::new(),
            },
            serde_json::Value::Object(o) => {
                let term = o
                    .get("term")
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| {
                        JobFailure::InvalidJob(format!("input.keywords[{i}] has no `term`"))
                    })?;
                let s = |a: &str, b: &str| {
                    o.get(a)
                        .or_else(|| o.get(b))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                };
                let strategy =
                    s("matchStrategy", "match_strategy").unwrap_or_else(|| "word_boundary".into());
                if !matches!(
                    strategy.as_str(),
                    "exact" | "word_boundary" | "substring" | "regex"
                ) {
                    return Err(JobFailure::InvalidJob(format!(
                        "input.keywords[{i}]: match strategy {strategy:?} is not one of exact, word_boundary, substring, regex"
                    )));
                }
                KeywordRecord {
                    id: keyword_id_for_term(term),
                    term: term.trim().to_owned(),
                    category: s("category", "category").unwrap_or_else(|| "custom".into()),
                    match_strategy: strategy,
                    regex_pattern: s("regexPattern", "regex_pattern"),
                    synonyms: o
                        .get("synonyms")
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }
            _ => {
                return Err(JobFailure::InvalidJob(format!(
                    "input.keywords[{i}] must be a non-empty string or an object with `term`"
                )));
            }
        };
        out.push(rec);
    }
    Ok(Some(out))
}

/// What a keyword job matches: tracked rows of drowl's `keywords` table, and the inline
/// terms no active row has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobKeywords {
    /// Active rows of the `keywords` table, exactly as stored: their matches are stored.
    pub tracked: Vec<KeywordRecord>,
    /// Inline terms with no active row, under ids from [`keyword_id_for_term`]: matched and
    /// reported in the job's output, never stored (a row of `keyword_matches` names a row
    /// of `keywords`, and jobs do not write that table).
    pub untracked: Vec<KeywordRecord>,
}

/// Resolves inline keywords against the stored (active) ones by term, case-insensitively.
///
/// A stored row wins over everything the input says about that term (id, strategy,
/// pattern, synonyms, category), so a job can choose which tracked keywords to match but
/// not change how one is matched or where its matches go. Every stored row with the term
/// is matched. Terms with no stored row keep their inline strategy; each term counts once.
pub fn resolve_keywords(inline: Vec<KeywordRecord>, stored: Vec<KeywordRecord>) -> JobKeywords {
    let fold = |t: &str| t.trim().to_lowercase();
    let mut by_term: HashMap<String, Vec<&KeywordRecord>> = HashMap::new();
    for k in &stored {
        by_term.entry(fold(&k.term)).or_default().push(k);
    }
    let stored_ids: HashSet<&str> = stored.iter().map(|k| k.id.as_str()).collect();
    let (mut picked, mut terms) = (HashSet::new(), HashSet::new());
    let mut out = JobKeywords::default();
    for mut k in inline {
        let term = fold(&k.term);
        if let Some(rows) = by_term.get(&term) {
            for row in rows {
                if picked.insert(row.id.as_str()) {
                    out.tracked.push((*row).clone());
                }
            }
        } else if terms.insert(term) {
            // Ephemeral ids must not alias a stored row, whatever ids drowl chose.
            while stored_ids.contains(k.id.as_str()) {
                k.id.push('_');
            }
            out.untracked.push(k);
        }
    }
    out
}

fn to_wit_keyword(k: &KeywordRecord) -> wit::Keyword {
    wit::Keyword {
        id: k.id.clone(),
        term: k.term.clone(),
        category: k.category.clone(),
        strategy: match k.match_strategy.as_str() {
            "exact" => wit::MatchStrategy::Exact,
            "substring" => wit::MatchStrategy::Substring,
            "regex" => wit::MatchStrategy::Regex,
            _ => wit::MatchStrategy::WordBoundary,
        },
        regex_pattern: k.regex_pattern.clone(),
        synonyms: k.synonyms.clone(),
    }
}

/// An enrichment job over every event the input selects: `keyword_extraction` with the
/// `keywords` plugin by default, or `identity_resolution` with the plugin it names.
pub(crate) struct Enrich {
    /// The plugin used when the job names none.
    pub(crate) default_plugin: Option<&'static str>,
}

impl PluginJob for Enrich {
    type Prepared = (JobKeywords, EventFilter);

    fn role(&self) -> Role {
        Role::Enrichment
    }

    fn default_plugin(&self) -> Option<&'static str> {
        self.default_plugin
    }

    async fn prepare(
        &self,
        storage: &Storage,
        job: &JobRequest,
    ) -> Result<Self::Prepared, JobFailure> {
        let stored = storage.events.active_keywords().await?;
        let keywords = match keywords_from_input(&job.input)? {
            Some(inline) => resolve_keywords(inline, stored),
            None => JobKeywords {
                tracked: stored,
                untracked: Vec::new(),
            },
        };
        Ok((keywords, filter_from_input(&job.input)?))
    }

    async fn run(
        &self,
        call: &mut PluginCall<'_>,
        (keywords, filter): Self::Prepared,
    ) -> Result<serde_json::Value, JobFailure> {
        batches(
            call.storage,
            call.plugin,
            call.scope,
            call.job,
            call.instance,
            &keywords,
            &filter,
        )
        .await
    }
}

async fn batches(
    storage: &Storage,
    plugin: &ReadyPlugin,
    scope: &OutputScope,
    job: &JobRequest,
    instance: &mut PluginInstance,
    keywords: &JobKeywords,
    filter: &EventFilter,
) -> Result<serde_json::Value, JobFailure> {
    let all = || keywords.tracked.iter().chain(&keywords.untracked);
    let wit_keywords: Vec<wit::Keyword> = all().map(to_wit_keyword).collect();
    let terms: BTreeMap<&str, &str> = all().map(|k| (k.id.as_str(), k.term.as_str())).collect();
    let untracked: HashSet<&str> = keywords.untracked.iter().map(|k| k.id.as_str()).collect();
    // Where an earlier job of this run stopped (see the continuation below).
    let mut after: Option<String> = resume_point(&job.input)?;
    let (mut scanned, mut calls, mut inserted, mut existing, mut identities, mut links) =
        (0u64, 0u32, 0u64, 0u64, 0u64, 0u64);
    let mut by_keyword: BTreeMap<String, u64> = BTreeMap::new();
    let mut more = false;
    loop {
        if calls >= plugin.budget.max_pages_per_job {
            // Work is left: a job that continues from here, instead of one job running
            // towards its deadline over millions of events.
            more = true;
            break;
        }
        let events = storage
            .events
            .list_events(filter, after.as_deref(), EVENTS_PER_CALL)
            .await?;
        let Some(last) = events.last() else { break };
        after = Some(last.id.clone());
        scanned += events.len() as u64;
        let req = wit::EnrichRequest {
            job: job_context(job),
            events: events.iter().map(to_wit_event).collect(),
            keywords: wit_keywords.clone(),
            config: plugin.env.config.values_list(),
        };
        let result = instance
            .enrich(&req)
            .await?
            .map_err(|e| plugin_failure(e, plugin))?;
        calls += 1;
        let known: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let checked = check_result(&result, &known, &terms, scope, plugin)?;
        for m in &checked.matches {
            *by_keyword
                .entry(terms[m.keyword_id.as_str()].to_owned())
                .or_default() += 1;
        }
        // Matches of keywords given inline but not tracked are counted, not stored.
        let matches: Vec<KeywordMatchRecord> = checked
            .matches
            .into_iter()
            .filter(|m| !untracked.contains(m.keyword_id.as_str()))
            .collect();
        if !matches.is_empty() {
            let w = storage.events.insert_keyword_matches(&matches).await?;
            inserted += w.inserted;
            existing += w.existing;
        }
        if !checked.identities.is_empty() {
            identities += storage
                .events
                .upsert_identities(&checked.identities)
                .await?
                .inserted;
        }
        if !checked.links.is_empty() {
            links += storage
                .events
                .insert_identity_links(&checked.links)
                .await?
                .inserted;
        }
        if (events.len() as u32) < EVENTS_PER_CALL {
            break;
        }
    }
    let unknown: Vec<serde_json::Value> = keywords
        .untracked
        .iter()
        .map(
            |k| json!({ "term": k.term, "matches": by_keyword.get(&k.term).copied().unwrap_or(0) }),
        )
        .collect();
    let continuation = match (&after, more) {
        (Some(last), true) => {
            let mut next = job.input.clone();
            next[RESUME_KEY] = json!(last);
            Some(next)
        }
        _ => None,
    };
    let mut output = json!({
        "pluginId": plugin.id(),
        "resumedAfter": resume_point(&job.input)?,
        "continuesAfter": continuation.as_ref().and(after.as_deref()),
        "keywords": terms.len(),
        "eventsScanned": scanned,
        "calls": calls,
        "matchesStored": inserted,
        "matchesExisting": existing,
        "matchesByKeyword": by_keyword,
        "unknownKeywords": unknown,
        "identities": identities,
        "links": links,
    });
    if let Some(next) = continuation {
        output[super::model::CONTINUATION_KEY] = next;
    }
    Ok(output)
}

/// The input field a continuation job resumes after: the id of the last event the job
/// before it handed to the plugin (events are read in id order).
pub const RESUME_KEY: &str = "resumeAfter";

fn resume_point(input: &serde_json::Value) -> Result<Option<String>, JobFailure> {
    match input.get(RESUME_KEY) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(id)) => Ok(Some(id.clone())),
        Some(v) => Err(JobFailure::InvalidJob(format!(
            "input.{RESUME_KEY} must be an event id, not {v}"
        ))),
    }
}

/// One enrichment result, checked whole and ready to store.
struct CheckedResult {
    matches: Vec<KeywordMatchRecord>,
    identities: Vec<IdentityRecord>,
    links: Vec<IdentityLinkRecord>,
}

/// Checks everything an enrichment call returned before any of it is stored: matches
/// only for the events and keywords of the request, identities and links only on the
/// plugin's platforms, every string storable.
fn check_result(
    result: &wit::EnrichResult,
    known: &HashSet<&str>,
    terms: &BTreeMap<&str, &str>,
    scope: &OutputScope,
    plugin: &ReadyPlugin,
) -> Result<CheckedResult, JobFailure> {
    let mut matches = Vec::with_capacity(result.keyword_matches.len());
    for (i, m) in result.keyword_matches.iter().enumerate() {
        if !known.contains(m.event_id.as_str()) || !terms.contains_key(m.keyword_id.as_str()) {
            return Err(output::invalid(
                format!("keyword-matches[{i}]"),
                format!(
                    "is for event {} / keyword {}, which were not in the request",
                    output::shown(&m.event_id),
                    output::shown(&m.keyword_id)
                ),
            ));
        }
        let matched_text: String = m.matched_text.chars().take(500).collect();
        output::text(
            &format!("keyword-matches[{i}].matched-text"),
            &matched_text,
            0,
            usize::MAX,
        )?;
        matches.push(KeywordMatchRecord {
            event_id: m.event_id.clone(),
            keyword_id: m.keyword_id.clone(),
            matched_text,
            position: i64::from(m.position),
            occurrences: i64::from(m.occurrences),
            plugin_id: plugin.id().to_owned(),
        });
    }
    let identities = result
        .identities
        .iter()
        .enumerate()
        .map(|(i, o)| scope.identity(&format!("identities[{i}]"), o))
        .collect::<Result<Vec<_>, _>>()?;
    let mut links = Vec::with_capacity(result.links.len());
    for (i, l) in result.links.iter().enumerate() {
        let a = scope.identity(&format!("links[{i}].a"), &l.a)?;
        let b = scope.identity(&format!("links[{i}].b"), &l.b)?;
        if !l.score.is_finite() {
            return Err(output::invalid(
                format!("links[{i}].score"),
                format!("{} is not a number from 0.0 to 1.0", l.score),
            ));
        }
        links.push(IdentityLinkRecord {
            a: (a.platform, a.platform_user_id),
            b: (b.platform, b.platform_user_id),
            confidence: match l.confidence {
                wit::LinkConfidence::High => "high",
                wit::LinkConfidence::Medium => "medium",
                wit::LinkConfidence::Low => "low",
                wit::LinkConfidence::Suggested => "suggested",
            }
            .into(),
            link_source: "plugin_heuristic".into(),
            confidence_score: l.score.clamp(0.0, 1.0),
            reason: plugin.env.redactor.clean(&l.reason),
            plugin_id: plugin.id().to_owned(),
        });
    }
    Ok(CheckedResult {
        matches,
        identities,
        links,
    })
}
