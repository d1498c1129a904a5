//! One behavioural suite every storage backend must pass: [`run_all`] for an
//! [`EventStore`] and [`KvStore`], [`resolution_links_follow_the_rules`] and
//! [`suggested_links_never_revive_removed_ones`] for an [`EventStore`] whose links a
//! [`ReadLinks`] can read, [`object_prefix_bytes`] for an [`ObjectStore`],
//! [`job_rows_follow_the_rules`] for a [`JobStore`], [`webhook_deliveries_are_stored_once`]
//! for a [`WebhookStore`].
//!
//! The memory and SQLite backends run it as unit tests; the PostgreSQL (and SQLite)
//! integration tests reach it through the `test-support` feature, which drowl-host's
//! integration tests turn on for themselves, so all backends are held to exactly the same
//! rules. Not part of the daemon: without that feature (or `cfg(test)`) this module is
//! not compiled.
//!
//! Every event and key-value check uses fresh random ids, so those checks can share a
//! database with other tests; the job checks need a `jobs` table of their own.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::storage::{
    EventFilter, EventStore, IdentityLinkRecord, IdentityRecord, JobStatus, JobStore, JobUpdate,
    KeywordMatchRecord, KeywordRecord, KvStore, NewDelivery, NewEvent, ObjectKey, ObjectStore,
    SavedDelivery, WebhookStore, WriteOutcome,
};

/// A random tag that keeps one run's rows apart from another's.
pub fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A valid object key for round-trip tests.
pub fn key() -> ObjectKey {
    ObjectKey::plugin_object("github", "cache/page-1.json").expect("valid key")
}

/// A GitHub-shaped event; `n` also orders the ids and the occurrence times.
pub fn event(tag: &str, n: usize, payload_bytes: usize) -> NewEvent {
    let at: DateTime<Utc> = Utc
        .timestamp_opt(1_704_067_200 + n as i64 * 60, 0)
        .single()
        .expect("valid time");
    NewEvent {
        id: format!("{tag}-{n:08}"),
        source: "github".into(),
        external_id: format!("{tag}-ext-{n}"),
        event_type: if n.is_multiple_of(2) {
            "push".into()
        } else {
            "star".into()
        },
        occurred_at: at,
        raw_payload: serde_json::json!({
            "id": n,
            "repo": {"name": "drowl/drowl"},
            "body": "x".repeat(payload_bytes),
            "nested": {"ok": true, "list": [1, 2, 3]}
        }),
        storage_key: Some(format!("plugins/github/raw/github/2024-01-01/{tag}.ndjson")),
        text: Some(format!("event {n} mentions TypeScript")),
        actor: Some(("github".into(), format!("user-{}", n % 7))),
        plugin_id: "github".into(),
        plugin_version: "1.0.0".into(),
        correlation_id: Some(format!("job-{tag}")),
    }
}

/// `n` events with the same tag.
pub fn batch(tag: &str, n: usize, payload_bytes: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event(tag, i, payload_bytes)).collect()
}

/// Runs every check against one backend.
pub async fn run_all(events: Arc<dyn EventStore>, kv: Arc<dyn KvStore>) {
    event_store_answers_ping(&*events).await;
    reinsert_is_idempotent(&*events).await;
    concurrent_insert_of_one_batch(events.clone()).await;
    list_events_filters_and_pages(&*events).await;
    identities_upsert(&*events).await;
    identity_links_are_ordered_with_one_active(&*events).await;
    manual_links_are_ordered_and_updated_in_place(&*events).await;
    identities_are_read_in_batches_in_order(&*events).await;
    indexed_identities_are_found_by_key_per_plugin(&*events).await;
    keyword_matches_are_unique(&*events).await;
    keywords_upsert(&*events).await;
    events_are_selected_by_keyword(&*events).await;
    kv_namespaces_are_isolated(&*kv).await;
    kv_list_keys_prefix_and_limit(&*kv).await;
    kv_namespace_bytes(&*kv).await;
}

/// Writing a batch twice stores it once; the second write reports every row as existing.
pub async fn reinsert_is_idempotent(s: &dyn EventStore) {
    let t = tag();
    let b = batch(&t, 50, 100);
    assert_eq!(
        s.insert_events(&b).await.unwrap(),
        WriteOutcome {
            inserted: 50,
            existing: 0
        }
    );
    assert_eq!(
        s.insert_events(&b).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 50
        }
    );
    // A different id for an already-stored (source, external_id) is still a duplicate.
    let mut again = b[0].clone();
    again.id = format!("{t}-other");
    assert_eq!(s.insert_events(&[again]).await.unwrap().existing, 1);
    // Duplicates inside one batch count once.
    let t2 = tag();
    let e = event(&t2, 1, 10);
    assert_eq!(
        s.insert_events(&[e.clone(), e]).await.unwrap(),
        WriteOutcome {
            inserted: 1,
            existing: 1
        }
    );
    let got = s.list_events(&filter_tag(&t), None, 1000).await.unwrap();
    assert_eq!(got.len(), 50);
    assert_eq!(got[3].raw_payload, b[3].raw_payload);
    assert_eq!(got[3].occurred_at, b[3].occurred_at);
    assert_eq!(got[3].actor, b[3].actor);
    assert_eq!(got[3].text, b[3].text);
    assert_eq!(got[3].storage_key, b[3].storage_key);
    assert_eq!(s.insert_events(&[]).await.unwrap(), WriteOutcome::default());
}

/// Two workers writing the same batch at once store each event exactly once.
pub async fn concurrent_insert_of_one_batch(s: Arc<dyn EventStore>) {
    let t = tag();
    let b = Arc::new(batch(&t, 300, 200));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (s, b) = (s.clone(), b.clone());
            tokio::spawn(async move { s.insert_events(&b).await.unwrap() })
        })
        .collect();
    let mut total = WriteOutcome::default();
    for t in tasks {
        let o = t.await.unwrap();
        total.inserted += o.inserted;
        total.existing += o.existing;
    }
    assert_eq!(
        total,
        WriteOutcome {
            inserted: 300,
            existing: 300
        }
    );
    assert_eq!(
        s.list_events(&filter_tag(&t), None, 1000)
            .await
            .unwrap()
            .len(),
        300
    );
}

fn filter_tag(t: &str) -> EventFilter {
    // Correlation ids are per tag, but the filter has no such field: use the ids instead.
    EventFilter {
        ids: Some((0..1000).map(|n| format!("{t}-{n:08}")).collect()),
        ..EventFilter::default()
    }
}

/// Filters and keyset paging by id.
pub async fn list_events_filters_and_pages(s: &dyn EventStore) {
    let t = tag();
    let mut b = batch(&t, 10, 10);
    b[9].source = format!("src{t}");
    b[8].plugin_id = format!("p{t}");
    s.insert_events(&b).await.unwrap();
    let page1 = s.list_events(&filter_tag(&t), None, 4).await.unwrap();
    let page2 = s
        .list_events(&filter_tag(&t), Some(&page1[3].id), 4)
        .await
        .unwrap();
    assert_eq!(
        page1.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids(&b[0..4])
    );
    assert_eq!(
        page2.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids(&b[4..8])
    );
    let by_source = EventFilter {
        source: Some(format!("src{t}")),
        ..EventFilter::default()
    };
    assert_eq!(
        s.list_events(&by_source, None, 10).await.unwrap()[0].id,
        b[9].id
    );
    let by_plugin = EventFilter {
        plugin_id: Some(format!("p{t}")),
        ..EventFilter::default()
    };
    assert_eq!(
        s.list_events(&by_plugin, None, 10).await.unwrap()[0].id,
        b[8].id
    );
    let by_type = EventFilter {
        event_types: Some(vec![b[7].event_type.clone(), "no-such-type".into()]),
        ids: None,
        source: Some(b[7].source.clone()),
        ..EventFilter::default()
    };
    assert!(
        s.list_events(&by_type, None, 1000)
            .await
            .unwrap()
            .iter()
            .all(|e| e.event_type == b[7].event_type),
        "only the types asked for"
    );
    let none_of_type = EventFilter {
        event_types: Some(vec![format!("type-{t}-none")]),
        ..EventFilter::default()
    };
    assert!(
        s.list_events(&none_of_type, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let window = EventFilter {
        plugin_id: Some("github".into()),
        since: Some(b[2].occurred_at),
        until: Some(b[5].occurred_at),
        ..EventFilter::default()
    };
    let mut got: Vec<String> = s
        .list_events(&window, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .filter(|id| id.starts_with(&t))
        .collect();
    got.sort();
    assert_eq!(got, ids(&b[2..5]), "since is inclusive, until exclusive");
}

fn ids(b: &[NewEvent]) -> Vec<String> {
    b.iter().map(|e| e.id.clone()).collect()
}

fn identity(platform: &str, uid: &str, name: Option<&str>) -> IdentityRecord {
    IdentityRecord {
        platform: platform.into(),
        platform_user_id: uid.into(),
        platform_username: name.map(Into::into),
        display_name: None,
        profile_url: None,
        avatar_url: None,
        metadata: serde_json::json!({"seen": 1}),
    }
}

/// Upserts count new and existing accounts; duplicates in a batch count once.
pub async fn identities_upsert(s: &dyn EventStore) {
    let t = tag();
    let a = identity("github", &format!("{t}-a"), Some("alice"));
    let b = identity("x", &format!("{t}-b"), None);
    assert_eq!(
        s.upsert_identities(&[a.clone(), b.clone(), a.clone()])
            .await
            .unwrap(),
        WriteOutcome {
            inserted: 2,
            existing: 0
        }
    );
    let a2 = identity("github", &format!("{t}-a"), Some("alice2"));
    let c = identity("github", &format!("{t}-c"), None);
    assert_eq!(
        s.upsert_identities(&[a2, c]).await.unwrap(),
        WriteOutcome {
            inserted: 1,
            existing: 1
        }
    );
    let mut bad = identity("github", &format!("{t}-d"), None);
    bad.metadata = serde_json::json!([1, 2]);
    assert!(
        s.upsert_identities(&[bad]).await.is_err(),
        "metadata must be an object"
    );
}

fn link(a: (&str, &str), b: (&str, &str)) -> IdentityLinkRecord {
    IdentityLinkRecord {
        a: (a.0.into(), a.1.into()),
        b: (b.0.into(), b.1.into()),
        confidence: "suggested".into(),
        link_source: "plugin_heuristic".into(),
        confidence_score: 0.5,
        reason: "same username".into(),
        plugin_id: "github".into(),
    }
}

/// (a, b) and (b, a) are the same pair; only one active link per pair.
pub async fn identity_links_are_ordered_with_one_active(s: &dyn EventStore) {
    let t = tag();
    let (ua, ub, uc) = (format!("{t}-a"), format!("{t}-b"), format!("{t}-c"));
    let ab = link(("github", &ua), ("x", &ub));
    let ba = link(("x", &ub), ("github", &ua));
    let ac = link(("github", &ua), ("zenn", &uc));
    assert_eq!(
        s.insert_identity_links(&[ab.clone(), ac]).await.unwrap(),
        WriteOutcome {
            inserted: 2,
            existing: 0
        }
    );
    assert_eq!(
        s.insert_identity_links(&[ba, ab]).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 2
        }
    );
    // The accounts exist now, so observing them is an update.
    assert_eq!(
        s.upsert_identities(&[identity("x", &ub, Some("bob"))])
            .await
            .unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 1
        }
    );
    let self_link = link(("github", &ua), ("github", &ua));
    assert!(s.insert_identity_links(&[self_link]).await.is_err());
    let mut bad_score = link(("github", &ua), ("x", &ub));
    bad_score.confidence_score = 1.5;
    assert!(s.insert_identity_links(&[bad_score]).await.is_err());
}

/// Two observed accounts of one tag, and a third: their ids, read back by account.
pub async fn three_identities(s: &dyn EventStore) -> [String; 3] {
    let t = tag();
    let accounts = [
        ("github", format!("{t}-a")),
        ("x", format!("{t}-b")),
        ("zenn", format!("{t}-c")),
    ];
    let records: Vec<IdentityRecord> = accounts.iter().map(|(p, u)| identity(p, u, None)).collect();
    s.upsert_identities(&records).await.unwrap();
    let mut ids = Vec::new();
    for (p, u) in &accounts {
        ids.push(
            s.identity_id(p, u)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{p}:{u} was just upserted")),
        );
    }
    assert_eq!(
        s.identity_id("github", &format!("{t}-never"))
            .await
            .unwrap(),
        None
    );
    ids.try_into().expect("three ids")
}

/// A person's link request: the pair is ordered whichever way it is asked, a pair keeps
/// one active link (updated in place, a plugin's suggestion included), and an unknown
/// id, a self-link or an unknown confidence is refused as invalid, naming what is wrong.
pub async fn manual_links_are_ordered_and_updated_in_place(s: &dyn EventStore) {
    use crate::storage::{LinkOutcome, StorageError};
    let [a, b, c] = three_identities(s).await;
    let pair = |x: &String, y: &String| {
        if x < y {
            (x.clone(), y.clone())
        } else {
            (y.clone(), x.clone())
        }
    };
    let (one, two) = pair(&a, &b);
    let asked = s
        .link_identities(&two, &one, "high", "asked")
        .await
        .unwrap();
    assert_eq!(
        asked,
        LinkOutcome {
            identity_id_1: one.clone(),
            identity_id_2: two.clone(),
            created: true,
        }
    );
    let again = s
        .link_identities(&one, &two, "manual", "asked")
        .await
        .unwrap();
    assert_eq!((again.identity_id_1, again.created), (one.clone(), false));
    assert!(
        !s.link_identities(&two, &one, "manual", "asked")
            .await
            .unwrap()
            .created
    );

    // A plugin's suggested link for (a, c) is the pair's active link: the request updates it.
    let t = tag();
    let (pa, pc) = (format!("{t}-pa"), format!("{t}-pc"));
    s.insert_identity_links(&[link(("github", &pa), ("zenn", &pc))])
        .await
        .unwrap();
    let (ia, ic) = (
        s.identity_id("github", &pa).await.unwrap().unwrap(),
        s.identity_id("zenn", &pc).await.unwrap().unwrap(),
    );
    assert!(
        !s.link_identities(&ia, &ic, "low", "asked")
            .await
            .unwrap()
            .created
    );
    assert!(
        s.link_identities(&a, &c, "low", "asked")
            .await
            .unwrap()
            .created
    );

    let missing = format!("{t}-missing");
    for (x, y) in [(&a, &missing), (&missing, &b)] {
        let e = s.link_identities(x, y, "high", "asked").await.unwrap_err();
        assert!(
            matches!(&e, StorageError::Invalid(m) if m.contains(&missing)),
            "{e}"
        );
    }
    let e = s
        .link_identities(&a, &a, "high", "asked")
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Invalid(_)), "{e}");
    let e = s
        .link_identities(&a, &b, "certain", "asked")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StorageError::Invalid(m) if m.contains("certain")),
        "{e}"
    );
}

/// An `identity_links` row as the link checks compare it, whatever the backend's column
/// types.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLink {
    /// `identity_id_1`.
    pub identity_id_1: String,
    /// `identity_id_2`.
    pub identity_id_2: String,
    /// `confidence`.
    pub confidence: String,
    /// `link_source`.
    pub link_source: String,
    /// `confidence_score`.
    pub confidence_score: f32,
    /// `plugin_id` (`None` for a person's link).
    pub plugin_id: Option<String>,
    /// `is_active`.
    pub is_active: bool,
}

/// Reads and edits `identity_links` rows for the link checks, with each backend's own
/// SQL: the [`EventStore`] neither lists links nor removes them (drowl's UI does that).
#[async_trait]
pub trait ReadLinks: Send + Sync {
    /// Every row between the two identities, in either column order (so a row stored
    /// unordered shows), inactive ones first.
    async fn links_between(&self, a: &str, b: &str) -> Vec<StoredLink>;
    /// Marks every row between the two identities inactive, as a person removing the
    /// link in drowl's UI does.
    async fn remove_links(&self, a: &str, b: &str);
}

/// Identities as identity resolution reads them: pages of `identities_after` in
/// (`created_at`, `id`) order, byte order for ids, that resume exactly after a position,
/// two identities stored at the same instant (one batch) included, and each identity
/// read back as stored. Works on a shared database: it only relies on the order.
pub async fn identities_are_read_in_batches_in_order(s: &dyn EventStore) {
    use crate::storage::IdentityPosition;
    let t = tag();
    let mut first = identity("github", &format!("{t}-1a"), Some("ann"));
    first.display_name = Some("Ann Example".into());
    first.profile_url = Some("https://github.com/ann".into());
    first.metadata = json!({"emails": ["ann@example.com"], "seen": 1});
    let second = identity("x", &format!("{t}-1b"), None);
    s.upsert_identities(&[first.clone(), second]).await.unwrap();
    // A later batch, at a later instant whatever its id.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.upsert_identities(&[identity("zenn", &format!("{t}-2"), None)])
        .await
        .unwrap();
    let id =
        |p: &'static str, u: String| async move { s.identity_id(p, &u).await.unwrap().unwrap() };
    let (a, b, c) = (
        id("github", format!("{t}-1a")).await,
        id("x", format!("{t}-1b")).await,
        id("zenn", format!("{t}-2")).await,
    );

    let all = s.identities_after(None, u32::MAX).await.unwrap();
    let key = |i: &crate::storage::KnownIdentity| (i.created_at, i.id.clone());
    assert!(
        all.windows(2).all(|w| key(&w[0]) < key(&w[1])),
        "not in strict (created_at, id) order: {:?}",
        all.iter().map(key).collect::<Vec<_>>()
    );
    // Pages of two, each resuming after the last identity of the previous page, read
    // every identity once, in the same order.
    let mut paged = Vec::new();
    let mut after: Option<IdentityPosition> = None;
    loop {
        let page = s.identities_after(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(IdentityPosition {
            created_at: last.created_at,
            id: last.id.clone(),
        });
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let at = |id: &str| {
        all.iter()
            .position(|i| i.id == id)
            .unwrap_or_else(|| panic!("identity {id} not read"))
    };
    let (ia, ib, ic) = (at(&a), at(&b), at(&c));
    // One batch, one instant: the tie is broken by id, and resuming after the first of
    // the two still reads the second.
    assert_eq!(all[ia].created_at, all[ib].created_at);
    assert!(all[ic].created_at > all[ia].created_at);
    let (lo, hi) = if a < b { (ia, ib) } else { (ib, ia) };
    assert_eq!(hi, lo + 1, "identities of one instant are adjacent, by id");
    assert!(hi < ic, "a later instant comes later");
    let resumed = s
        .identities_after(
            Some(&IdentityPosition {
                created_at: all[lo].created_at,
                id: all[lo].id.clone(),
            }),
            u32::MAX,
        )
        .await
        .unwrap();
    assert_eq!(resumed, all[lo + 1..]);
    assert!(
        s.identities_after(None, 0).await.unwrap().is_empty(),
        "limit 0 reads nothing"
    );

    // Read back as stored.
    let got = &all[ia];
    assert_eq!(
        (
            got.platform.as_str(),
            got.platform_user_id.as_str(),
            got.platform_username.as_deref(),
            got.display_name.as_deref(),
            got.profile_url.as_deref(),
            got.avatar_url.as_deref(),
            &got.metadata,
        ),
        (
            "github",
            first.platform_user_id.as_str(),
            Some("ann"),
            Some("Ann Example"),
            Some("https://github.com/ann"),
            None,
            &first.metadata,
        )
    );
    let age = Utc::now() - got.created_at;
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::minutes(5),
        "created_at {} is not when it was stored",
        got.created_at
    );
}

/// Up to `limit` ids `plugin` finds under `key`.
async fn found(s: &dyn EventStore, plugin: &str, key: &str, limit: u32) -> Vec<String> {
    s.find_indexed_identities(plugin, key, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

/// A resolution batch of `plugin` that only indexes.
fn index_batch(plugin: &str, index: &[(&str, &[&str])]) -> crate::storage::ResolutionBatch {
    crate::storage::ResolutionBatch {
        plugin_id: plugin.into(),
        index: index
            .iter()
            .map(|(id, keys)| {
                (
                    (*id).to_owned(),
                    keys.iter().map(|k| (*k).to_owned()).collect(),
                )
            })
            .collect(),
        links: Vec::new(),
    }
}

/// `directory.find`: a plugin finds the identities it indexed under exactly that key,
/// oldest first, at most `limit`, and never through another plugin's keys; a batch
/// replaces the keys of its identities (an empty list removes them) and leaves other
/// identities' and other plugins' keys alone.
pub async fn indexed_identities_are_found_by_key_per_plugin(s: &dyn EventStore) {
    let [x, y, z] = three_identities(s).await;
    // A later batch: `w` is the newest of the four, whatever its id.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let [w, _, _] = three_identities(s).await;
    let t = tag();
    let (pa, pb) = (format!("resolver-{t}-a"), format!("resolver-{t}-b"));
    let alice = "name:alice";
    let ok = WriteOutcome::default();
    assert_eq!(
        s.save_resolution(&index_batch(
            &pa,
            &[
                (&w, &[alice]),
                (&x, &[alice, "email:alice@example.com", alice]),
                (&y, &[alice]),
            ],
        ))
        .await
        .unwrap(),
        ok
    );
    assert_eq!(
        s.save_resolution(&index_batch(&pb, &[(&z, &[alice]), (&x, &["only-b"])]))
            .await
            .unwrap(),
        ok
    );

    // Oldest first: x and y were stored at one instant (by id), w later.
    let (first, second) = if x < y { (&x, &y) } else { (&y, &x) };
    assert_eq!(
        found(s, &pa, alice, 10).await,
        [first.clone(), second.clone(), w.clone()]
    );
    assert_eq!(
        found(s, &pa, alice, 2).await,
        [first.clone(), second.clone()]
    );
    assert!(found(s, &pa, alice, 0).await.is_empty());
    // Plugin B's keys are invisible to plugin A, and the other way round.
    assert!(found(s, &pa, "only-b", 10).await.is_empty());
    assert_eq!(found(s, &pb, alice, 10).await, [z.as_str()]);
    assert_eq!(found(s, &pb, "only-b", 10).await, [x.as_str()]);
    // Exact keys only.
    for near in ["name:alic", "name:alice ", "NAME:ALICE", ""] {
        assert!(found(s, &pa, near, 10).await.is_empty(), "{near:?}");
    }
    // Found identities read as identities_after reads them.
    let got = s
        .find_indexed_identities(&pa, "email:alice@example.com", 10)
        .await
        .unwrap();
    let listed = s.identities_after(None, u32::MAX).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(listed.contains(&got[0]), "{got:?}");

    // Re-saving x replaces its keys, for this plugin only; y and w keep theirs.
    s.save_resolution(&index_batch(&pa, &[(&x, &["email:new@example.com"])]))
        .await
        .unwrap();
    assert_eq!(found(s, &pa, alice, 10).await, [y.clone(), w.clone()]);
    assert!(
        found(s, &pa, "email:alice@example.com", 10)
            .await
            .is_empty()
    );
    assert_eq!(
        found(s, &pa, "email:new@example.com", 10).await,
        [x.as_str()]
    );
    assert_eq!(found(s, &pb, "only-b", 10).await, [x.as_str()]);
    // The same batch again changes nothing; an empty list removes an identity's keys.
    s.save_resolution(&index_batch(&pa, &[(&x, &["email:new@example.com"])]))
        .await
        .unwrap();
    assert_eq!(
        found(s, &pa, "email:new@example.com", 10).await,
        [x.as_str()]
    );
    s.save_resolution(&index_batch(&pa, &[(&y, &[])]))
        .await
        .unwrap();
    assert_eq!(found(s, &pa, alice, 10).await, [w.as_str()]);
    assert_eq!(
        s.save_resolution(&index_batch(&pa, &[])).await.unwrap(),
        ok,
        "an empty batch"
    );
}

/// A proposed link between `a` and `b`.
fn proposed(a: &str, b: &str, confidence: &str, score: f32) -> crate::storage::ProposedLink {
    crate::storage::ProposedLink {
        a: a.into(),
        b: b.into(),
        confidence: confidence.into(),
        score,
        reason: format!("{a} looks like {b}"),
    }
}

/// The rows between `a` and `b`, checked to be stored as the ordered pair.
async fn ordered_rows(read: &dyn ReadLinks, a: &str, b: &str) -> Vec<StoredLink> {
    let rows = read.links_between(a, b).await;
    let (one, two) = if a < b { (a, b) } else { (b, a) };
    for r in &rows {
        assert_eq!(
            (r.identity_id_1.as_str(), r.identity_id_2.as_str()),
            (one, two),
            "stored as the ordered pair"
        );
    }
    rows
}

/// `save_resolution`'s links: written as ordered pairs with `plugin_heuristic`, the
/// plugin's id, the confidence and the clamped score; skipped when the pair has any
/// link row (a person's, active or removed; an earlier proposal); re-saving changes
/// nothing. An unknown id is invalid, naming it, and nothing of the batch is written;
/// so is a self-link or a confidence a plugin may not claim.
pub async fn resolution_links_follow_the_rules(s: &dyn EventStore, read: &dyn ReadLinks) {
    use crate::storage::{LINK_SOURCE_HEURISTIC, ResolutionBatch, StorageError};
    let [a, b, c] = three_identities(s).await;
    let [d, e, f] = three_identities(s).await;
    let t = tag();
    let plugin = format!("resolver-{t}");
    let batch = |links: Vec<crate::storage::ProposedLink>| ResolutionBatch {
        plugin_id: plugin.clone(),
        index: Vec::new(),
        links,
    };

    let first = batch(vec![
        proposed(&b, &a, "high", 0.8),
        proposed(&a, &c, "medium", 1.7),
        proposed(&c, &b, "low", -0.2),
    ]);
    assert_eq!(
        s.save_resolution(&first).await.unwrap(),
        WriteOutcome {
            inserted: 3,
            existing: 0
        }
    );
    for (x, y, confidence, score) in [
        (&a, &b, "high", 0.8),
        (&a, &c, "medium", 1.0),
        (&b, &c, "low", 0.0),
    ] {
        let rows = ordered_rows(read, x, y).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(
            (
                r.confidence.as_str(),
                r.link_source.as_str(),
                r.plugin_id.as_deref(),
                r.is_active
            ),
            (
                confidence,
                LINK_SOURCE_HEURISTIC,
                Some(plugin.as_str()),
                true
            )
        );
        assert!((r.confidence_score - score).abs() < 1e-6, "{r:?}");
    }
    // The same batch again, and the pair named twice in one batch: nothing new.
    assert_eq!(
        s.save_resolution(&first).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 3
        }
    );
    assert_eq!(ordered_rows(read, &a, &b).await.len(), 1);
    assert_eq!(
        s.save_resolution(&batch(vec![
            proposed(&e, &f, "low", 0.3),
            proposed(&f, &e, "high", 0.9),
        ]))
        .await
        .unwrap(),
        WriteOutcome {
            inserted: 1,
            existing: 1
        }
    );
    let rows = ordered_rows(read, &e, &f).await;
    assert_eq!(
        rows.iter()
            .map(|r| r.confidence.as_str())
            .collect::<Vec<_>>(),
        ["low"]
    );

    // A person's link, active: kept as the person made it.
    s.link_identities(&d, &e, "medium", "asked").await.unwrap();
    assert_eq!(
        s.save_resolution(&batch(vec![proposed(&e, &d, "high", 0.9)]))
            .await
            .unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 1
        }
    );
    let rows = ordered_rows(read, &d, &e).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.link_source.as_str(), r.confidence.as_str(), r.is_active))
            .collect::<Vec<_>>(),
        [("user_manual", "medium", true)]
    );
    // A person's link, removed: not brought back.
    s.link_identities(&d, &f, "high", "asked").await.unwrap();
    read.remove_links(&d, &f).await;
    assert_eq!(
        s.save_resolution(&batch(vec![proposed(&d, &f, "high", 0.9)]))
            .await
            .unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 1
        }
    );
    let rows = ordered_rows(read, &d, &f).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.link_source.as_str(), r.is_active))
            .collect::<Vec<_>>(),
        [("user_manual", false)]
    );
    // A removed proposal is not brought back by the next batch either.
    read.remove_links(&a, &b).await;
    assert_eq!(s.save_resolution(&first).await.unwrap().inserted, 0);
    assert!(
        ordered_rows(read, &a, &b)
            .await
            .iter()
            .all(|r| !r.is_active)
    );

    // An unknown id, indexed or linked: invalid, naming it, and nothing written (the
    // keys the plugin had stay).
    s.save_resolution(&index_batch(&plugin, &[(&d, &["k-old"])]))
        .await
        .unwrap();
    let missing = format!("{t}-missing");
    for bad in [
        ResolutionBatch {
            plugin_id: plugin.clone(),
            index: vec![
                (d.clone(), vec!["k-new".into()]),
                (missing.clone(), vec!["k-new".into()]),
            ],
            links: vec![proposed(&e, &a, "high", 0.9)],
        },
        ResolutionBatch {
            plugin_id: plugin.clone(),
            index: vec![(d.clone(), vec!["k-new".into()])],
            links: vec![
                proposed(&e, &a, "high", 0.9),
                proposed(&a, &missing, "low", 0.2),
            ],
        },
    ] {
        let err = s.save_resolution(&bad).await.unwrap_err();
        assert!(
            matches!(&err, StorageError::Invalid(m) if m.contains(&missing)),
            "{err}"
        );
        assert!(found(s, &plugin, "k-new", 10).await.is_empty());
        assert_eq!(found(s, &plugin, "k-old", 10).await, [d.as_str()]);
        assert!(read.links_between(&a, &e).await.is_empty());
    }
    // A self-link, or a confidence a plugin may not claim: invalid, nothing written.
    for bad in [
        proposed(&a, &a, "high", 0.9),
        proposed(&a, &e, "manual", 0.9),
        proposed(&a, &e, "certain", 0.9),
        proposed(&a, &e, "high", f32::NAN),
    ] {
        let bad = ResolutionBatch {
            plugin_id: plugin.clone(),
            index: vec![(d.clone(), vec!["k-new".into()])],
            links: vec![bad],
        };
        let err = s.save_resolution(&bad).await.unwrap_err();
        assert!(matches!(err, StorageError::Invalid(_)), "{err}");
        assert!(found(s, &plugin, "k-new", 10).await.is_empty());
        assert!(read.links_between(&a, &e).await.is_empty());
    }
}

/// An enrichment plugin's suggested link never brings back a link a person removed,
/// whether the removed link was a person's or an earlier suggestion: only a pair with no
/// link row at all gets one.
pub async fn suggested_links_never_revive_removed_ones(s: &dyn EventStore, read: &dyn ReadLinks) {
    let t = tag();
    let (ua, ub, uc) = (format!("{t}-a"), format!("{t}-b"), format!("{t}-c"));
    let ab = link(("github", &ua), ("x", &ub));
    assert_eq!(
        s.insert_identity_links(std::slice::from_ref(&ab))
            .await
            .unwrap()
            .inserted,
        1
    );
    let id =
        |p: &'static str, u: String| async move { s.identity_id(p, &u).await.unwrap().unwrap() };
    let (a, b) = (id("github", ua.clone()).await, id("x", ub.clone()).await);
    read.remove_links(&a, &b).await;
    assert_eq!(
        s.insert_identity_links(&[ab]).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 1
        }
    );
    let rows = ordered_rows(read, &a, &b).await;
    assert_eq!(
        rows.iter().map(|r| r.is_active).collect::<Vec<_>>(),
        [false],
        "{rows:?}"
    );

    // A person's link, removed.
    s.upsert_identities(&[identity("zenn", &uc, None)])
        .await
        .unwrap();
    let c = id("zenn", uc.clone()).await;
    s.link_identities(&a, &c, "high", "asked").await.unwrap();
    read.remove_links(&a, &c).await;
    let ac = link(("zenn", &uc), ("github", &ua));
    assert_eq!(s.insert_identity_links(&[ac]).await.unwrap().existing, 1);
    let rows = ordered_rows(read, &a, &c).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.link_source.as_str(), r.is_active))
            .collect::<Vec<_>>(),
        [("user_manual", false)]
    );
}

/// A match is stored once per (event, keyword) and only for a stored event.
pub async fn keyword_matches_are_unique(s: &dyn EventStore) {
    let t = tag();
    let b = batch(&t, 2, 10);
    s.insert_events(&b).await.unwrap();
    let m = |event: &str, kw: &str| KeywordMatchRecord {
        event_id: event.into(),
        keyword_id: kw.into(),
        matched_text: "TypeScript".into(),
        position: 15,
        occurrences: 1,
        plugin_id: "keywords".into(),
    };
    let ms = [m(&b[0].id, "ts"), m(&b[0].id, "react"), m(&b[1].id, "ts")];
    assert_eq!(
        s.insert_keyword_matches(&ms).await.unwrap(),
        WriteOutcome {
            inserted: 3,
            existing: 0
        }
    );
    assert_eq!(
        s.insert_keyword_matches(&ms).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 3
        }
    );
    assert!(
        s.insert_keyword_matches(&[m(&format!("{t}-missing"), "ts")])
            .await
            .is_err()
    );
}

/// A keyword filter selects the events with a stored match of that keyword, by id or by
/// term in any case (what `data_export` filters on).
pub async fn events_are_selected_by_keyword(s: &dyn EventStore) {
    let t = tag();
    let b = batch(&t, 3, 10);
    s.insert_events(&b).await.unwrap();
    let term = format!("Term{t}");
    s.upsert_keywords(&[KeywordRecord {
        id: format!("{t}-kw"),
        term: term.clone(),
        category: "technology".into(),
        match_strategy: "word_boundary".into(),
        regex_pattern: None,
        synonyms: Vec::new(),
    }])
    .await
    .unwrap();
    s.insert_keyword_matches(&[KeywordMatchRecord {
        event_id: b[1].id.clone(),
        keyword_id: format!("{t}-kw"),
        matched_text: term.clone(),
        position: 0,
        occurrences: 1,
        plugin_id: "keywords".into(),
    }])
    .await
    .unwrap();
    for want in [format!("{t}-kw"), term.to_uppercase()] {
        let f = EventFilter {
            keyword: Some(want.clone()),
            ..EventFilter::default()
        };
        let got: Vec<String> = s
            .list_events(&f, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(got, vec![b[1].id.clone()], "keyword {want}");
    }
    let none = EventFilter {
        keyword: Some(format!("{t}-other")),
        ..EventFilter::default()
    };
    assert!(s.list_events(&none, None, 10).await.unwrap().is_empty());
}

/// Keywords are created, then updated in place; synonyms round-trip.
pub async fn keywords_upsert(s: &dyn EventStore) {
    let t = tag();
    let kw = |id: &str, term: &str| KeywordRecord {
        id: id.into(),
        term: term.into(),
        category: "technology".into(),
        match_strategy: "word_boundary".into(),
        regex_pattern: None,
        synonyms: vec!["TS".into(), "tsc".into()],
    };
    let (a, b) = (
        kw(&format!("{t}-a"), "TypeScript"),
        kw(&format!("{t}-b"), "React"),
    );
    assert_eq!(
        s.upsert_keywords(&[a.clone(), b.clone()]).await.unwrap(),
        WriteOutcome {
            inserted: 2,
            existing: 0
        }
    );
    let mut a2 = a.clone();
    a2.synonyms = vec!["ts".into()];
    assert_eq!(
        s.upsert_keywords(&[a2.clone()]).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 1
        }
    );
    let active = s.active_keywords().await.unwrap();
    assert!(active.contains(&a2));
    assert!(active.contains(&b));
    assert!(!active.contains(&a));
}

/// Two namespaces never see each other's keys.
pub async fn kv_namespaces_are_isolated(kv: &dyn KvStore) {
    let t = tag();
    let (n1, n2) = (format!("plugin:{t}-one"), format!("plugin:{t}-two"));
    kv.set(&n1, "cursor", b"1").await.unwrap();
    assert_eq!(kv.get(&n2, "cursor").await.unwrap(), None);
    kv.set(&n2, "cursor", b"2").await.unwrap();
    assert_eq!(
        kv.get(&n1, "cursor").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    kv.set(&n1, "cursor", b"3").await.unwrap();
    assert_eq!(
        kv.get(&n1, "cursor").await.unwrap().as_deref(),
        Some(&b"3"[..])
    );
    assert_eq!(
        kv.get(&n2, "cursor").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        kv.list_keys(&n2, "", 10).await.unwrap(),
        vec!["cursor".to_owned()]
    );
    kv.delete(&n1, "cursor").await.unwrap();
    kv.delete(&n1, "cursor").await.unwrap();
    assert_eq!(kv.get(&n1, "cursor").await.unwrap(), None);
    assert_eq!(
        kv.get(&n2, "cursor").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    // Binary values round-trip, empty ones included.
    let bin: Vec<u8> = (0..=255).collect();
    kv.set(&n1, "bin", &bin).await.unwrap();
    assert_eq!(kv.get(&n1, "bin").await.unwrap(), Some(bin));
    kv.set(&n1, "empty", b"").await.unwrap();
    assert_eq!(kv.get(&n1, "empty").await.unwrap(), Some(Vec::new()));
}

/// Prefix listing is exact, byte-ordered and limited.
pub async fn kv_list_keys_prefix_and_limit(kv: &dyn KvStore) {
    let ns = format!("plugin:{}", tag());
    for k in [
        "page/2",
        "page/10",
        "page/1",
        "pagex",
        "pag",
        "other",
        "page/\u{e9}",
        "page/Z",
    ] {
        kv.set(&ns, k, b"v").await.unwrap();
    }
    kv.set(&format!("{ns}-other"), "page/0", b"v")
        .await
        .unwrap();
    assert_eq!(
        kv.list_keys(&ns, "page/", 100).await.unwrap(),
        ["page/1", "page/10", "page/2", "page/Z", "page/\u{e9}"]
    );
    assert_eq!(
        kv.list_keys(&ns, "page/", 2).await.unwrap(),
        ["page/1", "page/10"]
    );
    assert_eq!(kv.list_keys(&ns, "page", 100).await.unwrap().len(), 6);
    assert_eq!(kv.list_keys(&ns, "", 100).await.unwrap().len(), 8);
    assert_eq!(kv.list_keys(&ns, "", 0).await.unwrap().len(), 0);
    assert!(kv.list_keys(&ns, "zzz", 100).await.unwrap().is_empty());
}

/// A namespace's stored bytes are its keys' and values' lengths in bytes, replaced
/// values counted once, deleted keys not at all, other namespaces never.
pub async fn kv_namespace_bytes(kv: &dyn KvStore) {
    let ns = format!("plugin:{}", tag());
    assert_eq!(kv.namespace_bytes(&ns).await.unwrap(), 0);
    kv.set(&ns, "a", &[0; 100]).await.unwrap();
    // Bytes, not characters: "\u{e9}" is two bytes.
    kv.set(&ns, "\u{e9}", b"xyz").await.unwrap();
    assert_eq!(kv.namespace_bytes(&ns).await.unwrap(), 101 + 5);
    kv.set(&ns, "a", &[0; 10]).await.unwrap();
    kv.set(&ns, "empty", b"").await.unwrap();
    assert_eq!(kv.namespace_bytes(&ns).await.unwrap(), 11 + 5 + 5);
    kv.delete(&ns, "\u{e9}").await.unwrap();
    assert_eq!(kv.namespace_bytes(&ns).await.unwrap(), 11 + 5);
    // A namespace that merely starts with this one's name is another namespace.
    kv.set(&format!("{ns}-other"), "a", &[0; 1000])
        .await
        .unwrap();
    assert_eq!(kv.namespace_bytes(&ns).await.unwrap(), 11 + 5);
}

/// A delivery as a platform might send it: headers that repeat, a body that is not
/// UTF-8 and holds NUL (stored as bytes, never as text).
pub fn delivery(plugin_id: &str, delivery_id: &str) -> NewDelivery {
    NewDelivery {
        plugin_id: plugin_id.to_owned(),
        delivery_id: delivery_id.to_owned(),
        event: Some("push".into()),
        headers: vec![
            ("x-github-delivery".into(), delivery_id.to_owned()),
            ("x-github-event".into(), "push".into()),
            ("x-hub-signature-256".into(), "sha256=00ff".into()),
            ("via".into(), "1.1 proxy-a".into()),
            ("via".into(), "1.1 proxy-b".into()),
        ],
        body: bytes::Bytes::from_static(b"{\"zen\":\"ok\"}\0\xff\xfe"),
        // Whole microseconds: what every backend keeps of an instant.
        received_at: Utc
            .timestamp_opt(1_717_171_717, 123_456_000)
            .single()
            .expect("valid time"),
    }
}

/// A delivery is stored once per (plugin, delivery id), exactly as received (bytes,
/// repeated headers in order, event, time); saving it again keeps the first and says so,
/// with the job recorded for it; concurrent saves of one delivery store it once.
pub async fn webhook_deliveries_are_stored_once(s: Arc<dyn WebhookStore>) {
    let t = tag();
    let plugin = format!("hook-{t}");
    let first = delivery(&plugin, "d-1");
    assert_eq!(
        s.save_delivery(&first).await.unwrap(),
        SavedDelivery {
            inserted: true,
            job_id: None
        }
    );
    let stored = s.delivery(&plugin, "d-1").await.unwrap().expect("stored");
    assert_eq!(stored.delivery, first);
    assert_eq!(stored.job_id, None);

    // A redelivery with other bytes (a forged body would not get this far, but a
    // platform's retry may differ in headers) leaves the first as it was.
    let mut again = first.clone();
    again.body = bytes::Bytes::from_static(b"{}");
    again.event = None;
    assert_eq!(
        s.save_delivery(&again).await.unwrap(),
        SavedDelivery {
            inserted: false,
            job_id: None
        }
    );
    s.set_delivery_job(&plugin, "d-1", "webhook:x:d-1")
        .await
        .unwrap();
    assert_eq!(
        s.save_delivery(&again).await.unwrap(),
        SavedDelivery {
            inserted: false,
            job_id: Some("webhook:x:d-1".into())
        }
    );
    let stored = s.delivery(&plugin, "d-1").await.unwrap().expect("stored");
    assert_eq!(stored.delivery, first);
    assert_eq!(stored.job_id.as_deref(), Some("webhook:x:d-1"));

    // The id is the plugin's: another plugin's delivery of the same id is its own row.
    let other = delivery(&format!("other-{t}"), "d-1");
    assert!(s.save_delivery(&other).await.unwrap().inserted);
    assert_eq!(
        s.delivery(&other.plugin_id, "d-1")
            .await
            .unwrap()
            .expect("stored")
            .job_id,
        None
    );
    // No event header, no headers at all, an empty body.
    let bare = NewDelivery {
        event: None,
        headers: vec![],
        body: bytes::Bytes::new(),
        ..delivery(&plugin, "d-2")
    };
    assert!(s.save_delivery(&bare).await.unwrap().inserted);
    assert_eq!(
        s.delivery(&plugin, "d-2")
            .await
            .unwrap()
            .expect("stored")
            .delivery,
        bare
    );
    assert_eq!(s.delivery(&plugin, "d-3").await.unwrap(), None);
    // Recording a job for a delivery that is not stored changes nothing.
    s.set_delivery_job(&plugin, "d-3", "j").await.unwrap();
    assert_eq!(s.delivery(&plugin, "d-3").await.unwrap(), None);

    // The same new delivery posted eight times at once is stored once.
    let racing = delivery(&plugin, "d-race");
    let saves: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let d = racing.clone();
            tokio::spawn(async move { s.save_delivery(&d).await.unwrap() })
        })
        .collect();
    let mut inserted = 0;
    for save in saves {
        if save.await.expect("save task").inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
}

/// A working event store answers the health check and says what it is.
pub async fn event_store_answers_ping(s: &dyn EventStore) {
    s.ping().await.expect("a working store answers ping");
    assert!(!s.backend().is_empty());
}

/// A working object store answers the health check and says what it is.
pub async fn object_store_answers_ping(objects: &dyn ObjectStore) {
    objects.ping().await.expect("a working store answers ping");
    assert!(!objects.backend().is_empty());
}

/// An object store sums the sizes of the objects under a plugin's prefix: replaced
/// objects counted once, nested keys included, other plugins (even one whose id starts
/// with this one's) never. Every object store backend runs it.
pub async fn object_prefix_bytes(objects: &dyn ObjectStore) {
    let plugin = format!("quota-{}", tag());
    let prefix = ObjectKey::plugin_objects_prefix(&plugin).unwrap();
    let put = |p: &str, k: &str, n: usize| {
        let key = ObjectKey::plugin_object(p, k).unwrap();
        async move {
            objects
                .put(&key, bytes::Bytes::from(vec![7; n]), "")
                .await
                .unwrap();
        }
    };
    assert_eq!(objects.prefix_bytes(&prefix).await.unwrap(), 0);
    put(&plugin, "a", 100).await;
    put(&plugin, "dir/b", 20).await;
    put(&plugin, "dir/deeper/c", 3).await;
    assert_eq!(objects.prefix_bytes(&prefix).await.unwrap(), 123);
    put(&plugin, "a", 10).await;
    assert_eq!(objects.prefix_bytes(&prefix).await.unwrap(), 33);
    put(&format!("{plugin}x"), "a", 1000).await;
    assert_eq!(objects.prefix_bytes(&prefix).await.unwrap(), 33);
    // A raw batch of the same plugin lives outside its objects prefix.
    let raw = ObjectKey::raw_batch(&plugin, "github", chrono::NaiveDate::MIN, "ab").unwrap();
    objects
        .put(&raw, bytes::Bytes::from_static(b"raw"), "")
        .await
        .unwrap();
    assert_eq!(objects.prefix_bytes(&prefix).await.unwrap(), 33);
    assert_eq!(
        objects
            .prefix_bytes(&format!("{prefix}dir/"))
            .await
            .unwrap(),
        23
    );
}

/// A `jobs` row as the job checks compare it, whatever the backend's column types.
#[derive(Debug, PartialEq)]
pub struct JobRow {
    /// `status`.
    pub status: String,
    /// `name`.
    pub name: String,
    /// `input.who`, which [`job_update`] sets to the job's name.
    pub who: Value,
    /// `output`.
    pub output: Option<Value>,
    /// `retry_attempt`.
    pub retry_attempt: i64,
    /// `created_at`, in ms since the epoch.
    pub created_ms: i64,
}

/// The columns of a `jobs` row that say how the job runs and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMeta {
    /// `priority`.
    pub priority: i64,
    /// `timeout_ms`.
    pub timeout_ms: i64,
    /// `retry_max_attempts`.
    pub retry_max_attempts: i64,
    /// `retry_backoff_strategy`.
    pub backoff: String,
    /// `user_id`.
    pub user_id: Option<String>,
    /// `correlation_id`.
    pub correlation_id: Option<String>,
    /// `parent_job_id`.
    pub parent_job_id: Option<String>,
    /// `tags`, in order.
    pub tags: Vec<String>,
}

/// Reads `jobs` rows back for the job checks: the store's own tables, read with each
/// backend's own SQL (a [`JobStore`] only writes).
#[async_trait]
pub trait ReadJobs: Send + Sync {
    /// The row of job `id`, if there is one.
    async fn row(&self, id: &str) -> Option<JobRow>;
    /// The [`JobMeta`] columns of job `id`'s row, if there is one.
    async fn meta(&self, id: &str) -> Option<JobMeta>;
    /// Rows in the table.
    async fn count(&self) -> i64;
}

/// A fixed instant plus `ms`, for job timestamps.
pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_800_000_000_000 + ms)
        .single()
        .expect("time")
}

/// A move of job `id` (named `who`) to `status`, enqueued at [`at`]`(created)` and started
/// at [`at`]`(started)`, with the output, error and retry columns that status implies.
pub fn job_update(id: &str, who: &str, status: JobStatus, created: i64, started: i64) -> JobUpdate {
    JobUpdate {
        id: id.to_owned(),
        job_type: "event_ingestion".to_owned(),
        name: who.to_owned(),
        status,
        priority: 0,
        input: json!({"pluginId": "p", "who": who}),
        output: (status == JobStatus::Completed).then(|| json!({"by": who})),
        error: (status == JobStatus::Failed || status == JobStatus::Pending)
            .then(|| ("boom".to_owned(), Some("plugin-error".to_owned()), None)),
        created_at: Some(at(created)),
        started_at: Some(at(started)),
        completed_at: matches!(status, JobStatus::Completed | JobStatus::Failed)
            .then(|| at(started + 5)),
        timeout_ms: 1000,
        retry_attempt: i32::from(status == JobStatus::Pending),
        retry_max_attempts: 3,
        backoff: "exponential".to_owned(),
        retry_last_at: (status == JobStatus::Pending).then(|| at(started + 5)),
        plugin_id: Some("p".to_owned()),
        user_id: None,
        correlation_id: None,
        parent_job_id: None,
        tags: None,
    }
}

/// The row says what the worker applied (priority, timeout, attempts, strategy) as of
/// the latest move, and keeps the input's user, correlation id, parent and tags when a
/// later move carries none. Needs no row `m1`.
pub async fn job_rows_record_what_was_applied(log: &dyn JobStore, read: &dyn ReadJobs) {
    use JobStatus::{Failed, Pending, Running};
    let mut first = job_update("m1", "m", Running, 0, 10);
    first.priority = 7;
    first.timeout_ms = 300_000;
    first.retry_max_attempts = 3;
    first.user_id = Some("user-1".into());
    first.correlation_id = Some("corr-1".into());
    first.parent_job_id = Some("parent-1".into());
    first.tags = Some(vec!["b".into(), "a".into(), "c".into()]);
    log.record(&first).await.expect("first");
    let want = JobMeta {
        priority: 7,
        timeout_ms: 300_000,
        retry_max_attempts: 3,
        backoff: "exponential".into(),
        user_id: Some("user-1".into()),
        correlation_id: Some("corr-1".into()),
        parent_job_id: Some("parent-1".into()),
        tags: vec!["b".into(), "a".into(), "c".into()],
    };
    assert_eq!(read.meta("m1").await.expect("row m1"), want);

    // A later move of the same job that carries none of the input's fields keeps them;
    // what the worker applies follows the move.
    let mut retried = job_update("m1", "m", Pending, 0, 10);
    retried.timeout_ms = 5_000;
    retried.retry_max_attempts = 2;
    retried.backoff = "linear".into();
    retried.priority = 0;
    log.record(&retried).await.expect("retried");
    let mut failed = job_update("m1", "m", Failed, 0, 10);
    (failed.timeout_ms, failed.retry_max_attempts, failed.backoff) = (5_000, 2, "linear".into());
    failed.tags = Some(Vec::new());
    log.record(&failed).await.expect("failed");
    assert_eq!(
        read.meta("m1").await.expect("row m1"),
        JobMeta {
            priority: 0,
            timeout_ms: 5_000,
            retry_max_attempts: 2,
            backoff: "linear".into(),
            ..want
        }
    );

    // A row written without any: no user, correlation id, parent, and no tags.
    log.record(&job_update("m2", "n", Running, 0, 10))
        .await
        .expect("plain");
    let plain = read.meta("m2").await.expect("row m2");
    assert_eq!(
        (
            plain.user_id,
            plain.correlation_id,
            plain.parent_job_id,
            plain.tags
        ),
        (None, None, None, Vec::<String>::new())
    );
}

/// One statement for many moves, final states kept, a reused id taking over its row.
/// Needs an empty `jobs` table.
pub async fn job_rows_follow_the_rules(log: &dyn JobStore, read: &dyn ReadJobs) {
    use JobStatus::{Completed, Failed, Pending, Running};
    let update = job_update;
    // One statement, several moves of one job and another job: the last move wins.
    log.record_all(&[
        update("1", "a", Running, 0, 10),
        update("2", "b", Running, 1, 11),
        update("1", "a", Completed, 0, 10),
    ])
    .await
    .expect("batch");
    let a = read.row("1").await.expect("row 1");
    assert_eq!(
        (a.status.as_str(), a.output.clone()),
        ("completed", Some(json!({"by": "a"})))
    );
    assert_eq!(read.row("2").await.expect("row 2").status, "running");

    // A late `pending` of the same job does not reopen a final row.
    log.record(&update("1", "a", Pending, 0, 10))
        .await
        .expect("late");
    assert_eq!(read.row("1").await.expect("row 1"), a, "final row reopened");

    // A retry of job 2: pending with the attempt counted, then running again keeps it.
    log.record(&update("2", "b", Pending, 1, 11))
        .await
        .expect("retry");
    log.record(&update("2", "b", Running, 1, 20))
        .await
        .expect("again");
    let b = read.row("2").await.expect("row 2");
    assert_eq!(
        (b.status.as_str(), b.retry_attempt),
        ("running", 1),
        "{b:?}"
    );
    log.record(&update("2", "b", Failed, 1, 20))
        .await
        .expect("fail");

    // Redis lost its data: a new job enqueued after job 1 ran gets id 1 again. It takes
    // over the row: its own input, enqueue time, no output, attempts from zero.
    log.record(&update("1", "c", Running, 100, 110))
        .await
        .expect("reuse");
    let c = read.row("1").await.expect("row 1");
    assert_eq!(
        c,
        JobRow {
            status: "running".into(),
            name: "c".into(),
            who: json!("c"),
            output: None,
            retry_attempt: 0,
            created_ms: at(100).timestamp_millis(),
        }
    );
    // Same for a row that was still running when its id was reused (job 2 failed above,
    // so use a third one).
    log.record(&update("3", "d", Running, 2, 12))
        .await
        .expect("d");
    log.record(&update("3", "e", Running, 200, 210))
        .await
        .expect("e");
    let e = read.row("3").await.expect("row 3");
    assert_eq!(
        (e.who.clone(), e.created_ms),
        (json!("e"), at(200).timestamp_millis())
    );
    assert_eq!(read.count().await, 3);
}

/// An event of the daily-metrics fixture: `n` its number, at `at` (RFC 3339), by `actor`.
fn metrics_event(
    t: &str,
    n: usize,
    source: &str,
    event_type: &str,
    at: &str,
    actor: Option<(&str, &str)>,
) -> NewEvent {
    let mut e = event(t, n, 0);
    e.source = source.into();
    e.event_type = event_type.into();
    e.occurred_at = at.parse().expect("fixture time");
    e.actor = actor.map(|(p, u)| (p.into(), u.into()));
    e
}

/// A day of the daily-metrics fixture.
fn day(text: &str) -> chrono::NaiveDate {
    text.parse().expect("fixture day")
}

/// `daily-metrics` over a fixture whose rows are counted by hand: events and distinct
/// actors per (day, source, type), keyword mentions per day, people (accounts collapsed
/// through active links, an account without identity a person of its own), identities
/// discovered per day; the same rows when recomputed, days shifted by a fixed offset, and
/// a range's rows replaced (not added to) when data changes.
///
/// Needs a store of its own: the rollups count whole tables.
pub async fn daily_metrics_are_counted_by_hand(s: &dyn EventStore) {
    use crate::storage::{
        DailyEventMetric, DailyKeywordMetric, DailyMetricsOutcome, DailyPeopleMetric, DayRange,
    };
    let t = tag();
    let u = |name: &str| format!("{t}-{name}");
    let (alice_gh, alice_x, alice_z) = (u("alice"), u("alice-x"), u("alice-z"));
    let (bob, carol, dave, erin) = (u("bob"), u("carol"), u("dave"), u("erin"));
    s.upsert_identities(&[
        identity("github", &alice_gh, None),
        identity("x", &alice_x, None),
        identity("github", &bob, None),
        identity("github", &carol, None),
    ])
    .await
    .unwrap();
    // Alice is three accounts: one link a person made, one a plugin suggested (which
    // also records the zenn account). Bob and Carol stay apart; Dave and Erin have no
    // identity row.
    let id = |p: &'static str, uid: String| async move {
        s.identity_id(p, &uid).await.unwrap().expect("identity")
    };
    let (ia, ix) = (
        id("github", alice_gh.clone()).await,
        id("x", alice_x.clone()).await,
    );
    s.link_identities(&ia, &ix, "high", "same person")
        .await
        .unwrap();
    s.insert_identity_links(&[link(("x", &alice_x), ("zenn", &alice_z))])
        .await
        .unwrap();

    let events = [
        metrics_event(
            &t,
            1,
            "github",
            "star",
            "2024-03-01T10:00:00Z",
            Some(("github", &alice_gh)),
        ),
        metrics_event(
            &t,
            2,
            "x",
            "tweet",
            "2024-03-01T11:00:00Z",
            Some(("x", &alice_x)),
        ),
        metrics_event(
            &t,
            3,
            "zenn",
            "post",
            "2024-03-01T12:00:00Z",
            Some(("zenn", &alice_z)),
        ),
        metrics_event(
            &t,
            4,
            "github",
            "star",
            "2024-03-01T13:00:00Z",
            Some(("github", &bob)),
        ),
        metrics_event(
            &t,
            5,
            "github",
            "star",
            "2024-03-01T14:00:00Z",
            Some(("github", &dave)),
        ),
        metrics_event(&t, 6, "github", "star", "2024-03-01T15:00:00Z", None),
        metrics_event(
            &t,
            7,
            "github",
            "star",
            "2024-03-01T23:30:00Z",
            Some(("github", &alice_gh)),
        ),
        metrics_event(
            &t,
            8,
            "github",
            "fork",
            "2024-03-02T09:00:00Z",
            Some(("github", &carol)),
        ),
        metrics_event(
            &t,
            9,
            "github",
            "star",
            "2024-03-02T10:00:00Z",
            Some(("github", &bob)),
        ),
        metrics_event(
            &t,
            10,
            "github",
            "star",
            "2024-03-03T01:00:00Z",
            Some(("github", &bob)),
        ),
        metrics_event(
            &t,
            11,
            "github",
            "star",
            "2024-02-29T23:59:00Z",
            Some(("github", &erin)),
        ),
    ];
    s.insert_events(&events).await.unwrap();
    let mention = |n: usize, keyword: &str, occurrences: i64| KeywordMatchRecord {
        event_id: events[n - 1].id.clone(),
        keyword_id: format!("{t}-{keyword}"),
        matched_text: keyword.into(),
        position: 0,
        occurrences,
        plugin_id: "keywords".into(),
    };
    s.insert_keyword_matches(&[
        mention(1, "k1", 2),
        mention(2, "k1", 1),
        mention(8, "k2", 3),
        mention(10, "k1", 5),
    ])
    .await
    .unwrap();

    let utc = DayRange {
        first: day("2024-03-01"),
        last: day("2024-03-02"),
        utc_offset_seconds: 0,
    };
    let ev = |d: &str, source: &str, ty: &str, n: i64, actors: i64| DailyEventMetric {
        day: day(d),
        source: source.into(),
        event_type: ty.into(),
        event_count: n,
        actor_count: actors,
    };
    let people = |d: &str, people: i64, accounts: i64| DailyPeopleMetric {
        day: day(d),
        active_people: people,
        active_accounts: accounts,
    };
    let written = s.compute_daily_metrics(&utc).await.unwrap();
    assert_eq!(
        written,
        DailyMetricsOutcome {
            events: 5,
            keywords: 2,
            people: 2,
            identities: 0,
        }
    );
    let got = s.daily_metrics(utc.first, utc.last).await.unwrap();
    assert_eq!(
        got.events,
        [
            ev("2024-03-01", "github", "star", 5, 3),
            ev("2024-03-01", "x", "tweet", 1, 1),
            ev("2024-03-01", "zenn", "post", 1, 1),
            ev("2024-03-02", "github", "fork", 1, 1),
            ev("2024-03-02", "github", "star", 1, 1),
        ]
    );
    assert_eq!(
        got.keywords,
        [
            DailyKeywordMetric {
                day: day("2024-03-01"),
                keyword_id: format!("{t}-k1"),
                match_count: 3,
                event_count: 2,
            },
            DailyKeywordMetric {
                day: day("2024-03-02"),
                keyword_id: format!("{t}-k2"),
                match_count: 3,
                event_count: 1,
            },
        ]
    );
    // 03-01: alice (three accounts), bob, dave; 03-02: carol, bob.
    assert_eq!(
        got.people,
        [people("2024-03-01", 3, 5), people("2024-03-02", 2, 2)]
    );
    assert!(got.identities.is_empty(), "{:?}", got.identities);

    // Recomputing gives the same rows.
    assert_eq!(s.compute_daily_metrics(&utc).await.unwrap(), written);
    assert_eq!(s.daily_metrics(utc.first, utc.last).await.unwrap(), got);

    // Days starting at UTC+01:00: 02-29 23:59 is 03-01, 03-01 23:30 is 03-02.
    let plus_one = DayRange {
        utc_offset_seconds: 3600,
        ..utc
    };
    s.compute_daily_metrics(&plus_one).await.unwrap();
    let shifted = s.daily_metrics(utc.first, utc.last).await.unwrap();
    assert_eq!(
        shifted.events,
        [
            ev("2024-03-01", "github", "star", 5, 4),
            ev("2024-03-01", "x", "tweet", 1, 1),
            ev("2024-03-01", "zenn", "post", 1, 1),
            ev("2024-03-02", "github", "fork", 1, 1),
            ev("2024-03-02", "github", "star", 2, 2),
        ]
    );
    assert_eq!(
        shifted.people,
        [people("2024-03-01", 4, 6), people("2024-03-02", 3, 3)]
    );

    // New data: the range's rows are replaced, not added to.
    s.insert_events(&[metrics_event(
        &t,
        12,
        "github",
        "star",
        "2024-03-02T12:00:00Z",
        Some(("github", &carol)),
    )])
    .await
    .unwrap();
    s.compute_daily_metrics(&utc).await.unwrap();
    let again = s.daily_metrics(utc.first, utc.last).await.unwrap();
    assert_eq!(again.events[4], ev("2024-03-02", "github", "star", 2, 2));
    assert_eq!(again.events[..4], got.events[..4]);
    assert_eq!(again.people, got.people);
    assert_eq!(again.keywords, got.keywords);

    // Identities count on the day they were discovered: today, for this fixture.
    let today = Utc::now().date_naive();
    let now = DayRange {
        first: today,
        last: today,
        utc_offset_seconds: 0,
    };
    let written = s.compute_daily_metrics(&now).await.unwrap();
    assert_eq!((written.events, written.identities), (0, 3));
    let counts: Vec<(String, i64)> = s
        .daily_metrics(today, today)
        .await
        .unwrap()
        .identities
        .into_iter()
        .map(|r| {
            assert_eq!(r.day, today);
            (r.platform, r.new_identities)
        })
        .collect();
    assert_eq!(
        counts,
        [("github".into(), 3), ("x".into(), 1), ("zenn".into(), 1)]
    );
}
