//! drowl's first-party identity-resolution plugin.
//!
//! drowl stores one `identities` row per account (a GitHub login, an X handle, a Zenn or
//! Qiita user, ...). Reports count *people*, so accounts that belong to one person are
//! joined by identity links. This plugin proposes those links from real signals: a shared
//! e-mail address, profiles that link to each other, the same username, the same display
//! name.
//!
//! A false link merges two people in every report, so the rules are conservative: one weak
//! or medium signal alone never links (common handles and common names collide), and the
//! evidence behind each proposal is kept in it so a reviewer can see why.
//!
//! The decision logic is pure, in [`signals`]: no I/O, no threads, so it runs the same in
//! unit tests (its table-driven test of linked and not-linked pairs) and in the
//! `wasm32-wasip2` component. [`resolve`] is the component side (contract
//! `drowl:plugin@0.2.0`): for each identity of a batch it looks candidates up in the
//! plugin's own index through the host's `directory` (by username, e-mail, URL and name
//! key), assesses every candidate, and hands back the links and the keys to index the
//! batch under. Nothing is ever read twice: each identity is resolved once, when it is new,
//! against everything indexed before it and the rest of its batch.

pub mod signals;

use std::collections::{BTreeMap, BTreeSet};

use drowl_plugin_sdk::identity::{self, KnownIdentity};
use drowl_plugin_sdk::prelude::*;

/// How many candidates one lookup key may bring. A key shared by more accounts than this
/// (a very common name) is a weak key anyway; the strongest evidence (e-mail, URLs) is
/// specific, so the first ones suffice.
const CANDIDATES_PER_KEY: u32 = 50;

/// The plugin.
pub struct IdentityPlugin;

/// The key an identity is indexed under for one lookup: a kind prefix keeps a username
/// `example.com` apart from a URL or name that happens to read the same.
pub fn index_key(l: &signals::Lookup) -> String {
    match l {
        signals::Lookup::Username(u) => format!("username:{u}"),
        signals::Lookup::Email(e) => format!("email:{e}"),
        signals::Lookup::Url(u) => format!("url:{u}"),
        signals::Lookup::DisplayName(n) => format!("name:{n}"),
    }
}

/// The account as the signals see it.
pub fn from_known(k: &KnownIdentity) -> signals::Identity {
    signals::Identity {
        id: k.id.clone(),
        platform: k.platform.clone(),
        platform_user_id: k.platform_user_id.clone(),
        username: k.platform_username.clone(),
        display_name: k.display_name.clone(),
        profile_url: k.profile_url.clone(),
        metadata: k
            .metadata_json
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(serde_json::Value::Null),
    }
}

fn confidence(c: signals::Confidence) -> LinkConfidence {
    match c {
        signals::Confidence::High => LinkConfidence::High,
        signals::Confidence::Medium => LinkConfidence::Medium,
        signals::Confidence::Low => LinkConfidence::Low,
    }
}

/// Resolves one batch: `find` looks keys up in what earlier batches indexed.
///
/// Generic over the lookup so the same code runs in the component (the host's
/// `directory.find`) and in native tests (a map).
pub fn resolve_batch<E>(
    batch: &[signals::Identity],
    mut find: impl FnMut(&str) -> Result<Vec<signals::Identity>, E>,
) -> Result<ResolveResult, E> {
    let keys: Vec<Vec<String>> = batch
        .iter()
        .map(|i| signals::lookups(i).iter().map(index_key).collect())
        .collect();
    let mut links = BTreeMap::new();
    for (n, a) in batch.iter().enumerate() {
        // Candidates: what earlier batches indexed under a's keys, and the identities
        // before it in this batch that share a key with it.
        let mut candidates: BTreeMap<String, signals::Identity> = BTreeMap::new();
        for key in &keys[n] {
            for c in find(key)? {
                candidates.entry(c.id.clone()).or_insert(c);
            }
        }
        let mine: BTreeSet<&String> = keys[n].iter().collect();
        for (m, b) in batch[..n].iter().enumerate() {
            if keys[m].iter().any(|k| mine.contains(k)) {
                candidates.entry(b.id.clone()).or_insert_with(|| b.clone());
            }
        }
        for b in candidates.values() {
            let Some(p) = signals::assess(a, b) else {
                continue;
            };
            let pair = if a.id < b.id {
                (a.id.clone(), b.id.clone())
            } else {
                (b.id.clone(), a.id.clone())
            };
            links.entry(pair).or_insert(p);
        }
    }
    Ok(ResolveResult {
        links: links
            .into_iter()
            .map(|((a, b), p)| ProposedLink {
                identity_a: a,
                identity_b: b,
                confidence: confidence(p.confidence),
                score: p.score,
                reason: p.reason,
            })
            .collect(),
        index: batch
            .iter()
            .zip(keys)
            .map(|(i, keys)| IndexEntry {
                identity_id: i.id.clone(),
                keys,
            })
            .collect(),
    })
}

impl Identity for IdentityPlugin {
    fn manifest() -> Manifest {
        Manifest::builder("identity", "Identity resolution", env!("CARGO_PKG_VERSION"))
            .description(
                "Proposes links between accounts of one person across platforms: a shared \
                 e-mail, profiles that link to each other, or the same username with a \
                 corroborating signal. Never links on one weak signal, never overrides a \
                 person's links.",
            )
            .author("drowl", None, None)
            .capability(Capability::IdentityResolution)
            .min_host_version("0.2.0")
            .build()
    }

    fn resolve(req: ResolveRequest) -> Result<ResolveResult, JobError> {
        let batch: Vec<signals::Identity> = req.identities.iter().map(from_known).collect();
        let result = resolve_batch(&batch, |key| {
            identity::find(key, CANDIDATES_PER_KEY)
                .map(|found| found.iter().map(from_known).collect())
        })?;
        log::info(&format!(
            "resolved {} identities: {} links proposed",
            batch.len(),
            result.links.len()
        ));
        Ok(result)
    }
}

drowl_plugin_sdk::identity_plugin!(IdentityPlugin);
