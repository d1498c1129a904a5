//! GitHub's own example deliveries through the plugin's webhook mapping.
//!
//! The examples are the npm package `@octokit/webhooks-examples` (pinned in
//! `tests/interop/package.json`, installed by `scripts/services.sh`): one JSON index of
//! real payloads per webhook event, as GitHub documents them. Every example of the eight
//! events the plugin maps must become exactly the event listed in [`EXPECTED`] (or none),
//! with its sender as the actor and the human-written text keyword matching reads; every
//! example of every other event gives none.

use std::collections::BTreeMap;
use std::path::Path;

use drowl_plugin_sdk::webhook::{Delivery, DeliveryResult};
use drowl_plugin_sdk::{JobContext, JobError};
use github_plugin::webhooks::map_delivery;
use serde_json::Value;

/// The examples index, relative to the workspace root.
const INDEX: &str =
    "tests/interop/node_modules/@octokit/webhooks-examples/api.github.com/index.json";

/// The webhook events the plugin maps.
const MAPPED: [&str; 8] = [
    "push",
    "issues",
    "issue_comment",
    "pull_request",
    "release",
    "star",
    "watch",
    "fork",
];

/// What an example becomes: (event type, external id, occurred-at).
type Becomes = (&'static str, &'static str, &'static str);

/// An example: event, its index in the package, its `action` (`-` for none), and the
/// event it becomes (`None`: no event).
type Row = (&'static str, usize, &'static str, Option<Becomes>);

/// Every example of the mapped events, in the package's order.
#[rustfmt::skip]
const EXPECTED: &[Row] = &[
    ("push", 0, "-", Some(("push", "push:186853002:0000000000000000000000000000000000000000..6113728f27ae82c7b1a177c8d03f9e96e0adf246:refs/tags/simple-tag", "2019-05-15T15:20:57Z"))),
    ("push", 1, "-", None),
    ("push", 2, "-", None),
    ("push", 3, "-", None),
    ("push", 4, "-", Some(("push", "push:186853002:0000000000000000000000000000000000000000..6113728f27ae82c7b1a177c8d03f9e96e0adf246:refs/heads/master", "2019-05-15T15:20:57Z"))),
    ("push", 5, "-", Some(("push", "push:186853002:0000000000000000000000000000000000000000..6113728f27ae82c7b1a177c8d03f9e96e0adf246:refs/heads/master", "2019-05-15T15:20:57Z"))),
    ("push", 6, "-", None),
    ("issues", 0, "edited", Some(("issue", "issues:444500041:edited:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 1, "assigned", Some(("issue", "issues:444500041:assigned:21031067:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 2, "assigned", Some(("issue", "issues:444500041:assigned:21031067:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 3, "assigned", Some(("issue", "issues:444500041:assigned:21031067:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 4, "deleted", None),
    ("issues", 5, "demilestoned", None),
    ("issues", 6, "demilestoned", None),
    ("issues", 7, "edited", Some(("issue", "issues:444500041:edited:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 8, "edited", Some(("issue", "issues:444500041:edited:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 9, "labeled", Some(("issue", "issues:444500041:labeled:1362934389:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 10, "labeled", Some(("issue", "issues:444500041:labeled:1362934389:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 11, "locked", None),
    ("issues", 12, "locked", None),
    ("issues", 13, "milestoned", None),
    ("issues", 14, "milestoned", None),
    ("issues", 15, "opened", Some(("issue", "issues:444500041:opened:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 16, "opened", Some(("issue", "issues:444500041:opened:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 17, "opened", Some(("issue", "issues:444500041:opened:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 18, "opened", Some(("issue", "issues:444500041:opened:2019-05-15T15:20:18Z", "2019-05-15T15:20:18Z"))),
    ("issues", 19, "pinned", None),
    ("issues", 20, "reopened", Some(("issue", "issues:444500041:reopened:2021-10-11T16:40:56Z", "2021-10-11T16:40:56Z"))),
    ("issues", 21, "transferred", None),
    ("issues", 22, "unassigned", Some(("issue", "issues:444500041:unassigned:21031067:2019-05-15T15:20:25Z", "2019-05-15T15:20:25Z"))),
    ("issues", 23, "unassigned", Some(("issue", "issues:444500041:unassigned:21031067:2019-05-15T15:20:25Z", "2019-05-15T15:20:25Z"))),
    ("issues", 24, "unlabeled", Some(("issue", "issues:444500041:unlabeled:1362934389:2019-05-15T15:20:26Z", "2019-05-15T15:20:26Z"))),
    ("issues", 25, "unlabeled", Some(("issue", "issues:444500041:unlabeled:1362934389:2019-05-15T15:20:26Z", "2019-05-15T15:20:26Z"))),
    ("issues", 26, "unlocked", None),
    ("issues", 27, "unlocked", None),
    ("issues", 28, "unpinned", None),
    ("issue_comment", 0, "created", Some(("comment", "issue_comment:492700400", "2019-05-15T15:20:21Z"))),
    ("issue_comment", 1, "created", Some(("comment", "issue_comment:492700400", "2019-05-15T15:20:21Z"))),
    ("issue_comment", 2, "created", Some(("comment", "issue_comment:492700400", "2019-05-15T15:20:21Z"))),
    ("issue_comment", 3, "created", Some(("comment", "issue_comment:492700400", "2019-05-15T15:20:21Z"))),
    ("issue_comment", 4, "created", Some(("comment", "issue_comment:492700400", "2019-05-15T15:20:21Z"))),
    ("issue_comment", 5, "deleted", None),
    ("issue_comment", 6, "deleted", None),
    ("issue_comment", 7, "edited", Some(("comment", "issue_comment:492700400:edited:2019-05-15T15:20:22Z", "2019-05-15T15:20:22Z"))),
    ("issue_comment", 8, "edited", Some(("comment", "issue_comment:492700400:edited:2019-05-15T15:20:22Z", "2019-05-15T15:20:22Z"))),
    ("pull_request", 0, "opened", Some(("pull_request", "pull_request:279147437:opened:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 1, "assigned", Some(("pull_request", "pull_request:279147437:assigned:21031067:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 2, "assigned", Some(("pull_request", "pull_request:279147437:assigned:21031067:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 3, "closed", Some(("pull_request", "pull_request:279147437:closed:2019-05-15T15:21:18Z", "2019-05-15T15:21:18Z"))),
    ("pull_request", 4, "closed", Some(("pull_request", "pull_request:279147437:closed:2019-05-15T15:21:18Z", "2019-05-15T15:21:18Z"))),
    ("pull_request", 5, "converted_to_draft", None),
    ("pull_request", 6, "converted_to_draft", None),
    ("pull_request", 7, "converted_to_draft", None),
    ("pull_request", 8, "labeled", Some(("pull_request", "pull_request:279147437:labeled:1362934389:2019-05-15T15:20:35Z", "2019-05-15T15:20:35Z"))),
    ("pull_request", 9, "labeled", Some(("pull_request", "pull_request:279147437:labeled:1362934389:2019-05-15T15:20:35Z", "2019-05-15T15:20:35Z"))),
    ("pull_request", 10, "locked", None),
    ("pull_request", 11, "locked", None),
    ("pull_request", 12, "opened", Some(("pull_request", "pull_request:279147437:opened:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 13, "opened", Some(("pull_request", "pull_request:279147437:opened:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 14, "opened", Some(("pull_request", "pull_request:279147437:opened:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 15, "ready_for_review", None),
    ("pull_request", 16, "ready_for_review", None),
    ("pull_request", 17, "ready_for_review", None),
    ("pull_request", 18, "reopened", Some(("pull_request", "pull_request:279147437:reopened:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 19, "reopened", Some(("pull_request", "pull_request:279147437:reopened:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 20, "review_request_removed", Some(("pull_request", "pull_request:279147437:review_request_removed:5346:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 21, "review_requested", Some(("pull_request", "pull_request:279147437:review_requested:5346:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 22, "synchronize", Some(("pull_request", "pull_request:279147437:synchronize:ec26c3e57ca3a959ca5aad62de7213c562f8c821:2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"))),
    ("pull_request", 23, "unassigned", Some(("pull_request", "pull_request:279147437:unassigned:21031067:2019-05-15T15:20:35Z", "2019-05-15T15:20:35Z"))),
    ("pull_request", 24, "unassigned", Some(("pull_request", "pull_request:279147437:unassigned:21031067:2019-05-15T15:20:35Z", "2019-05-15T15:20:35Z"))),
    ("pull_request", 25, "unlabeled", Some(("pull_request", "pull_request:279147437:unlabeled:1362934389:2019-05-15T15:20:36Z", "2019-05-15T15:20:36Z"))),
    ("pull_request", 26, "unlabeled", Some(("pull_request", "pull_request:279147437:unlabeled:1362934389:2019-05-15T15:20:36Z", "2019-05-15T15:20:36Z"))),
    ("pull_request", 27, "unlocked", None),
    ("pull_request", 28, "unlocked", None),
    ("release", 0, "published", Some(("release", "release:17372790:published", "2019-05-15T15:20:53Z"))),
    ("release", 1, "created", None),
    ("release", 2, "created", None),
    ("release", 3, "created", None),
    ("release", 4, "deleted", None),
    ("release", 5, "deleted", None),
    ("release", 6, "edited", None),
    ("release", 7, "edited", None),
    ("release", 8, "prereleased", None),
    ("release", 9, "prereleased", None),
    ("release", 10, "published", Some(("release", "release:17372790:published", "2019-05-15T15:20:53Z"))),
    ("release", 11, "published", Some(("release", "release:17372790:published", "2019-05-15T15:20:53Z"))),
    ("release", 12, "released", None),
    ("star", 0, "created", Some(("star", "star:186853002:21031067:created:2019-05-15T15:20:40Z", "2019-05-15T15:20:40Z"))),
    ("star", 1, "created", Some(("star", "star:186853002:21031067:created:2019-05-15T15:20:40Z", "2019-05-15T15:20:40Z"))),
    ("star", 2, "deleted", Some(("unstar", "star:186853002:21031067:deleted:2019-05-15T15:20:41Z", "2019-05-15T15:20:41Z"))),
    ("watch", 0, "started", Some(("star", "star:186853002:21031067:created:2019-05-15T15:20:40Z", "2019-05-15T15:20:40Z"))),
    ("watch", 1, "started", Some(("star", "star:186853002:21031067:created:2019-05-15T15:20:40Z", "2019-05-15T15:20:40Z"))),
    ("watch", 2, "started", Some(("star", "star:186853002:21031067:created:2019-05-15T15:20:40Z", "2019-05-15T15:20:40Z"))),
    ("fork", 0, "-", Some(("fork", "fork:186853261", "2019-05-15T15:20:42Z"))),
    ("fork", 1, "-", Some(("fork", "fork:186853261", "2019-05-15T15:20:42Z"))),
    ("fork", 2, "-", Some(("fork", "fork:186853261", "2019-05-15T15:20:42Z"))),
];

/// The examples by event name, read from the installed npm package.
fn examples() -> BTreeMap<String, Vec<Value>> {
    // plugins/github → the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the plugin crate sits two levels below the workspace root");
    let path = root.join(INDEX);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read GitHub's example webhook payloads at {} ({e}); run scripts/services.sh, \
             which installs tests/interop's npm packages (@octokit/webhooks-examples among them)",
            path.display()
        )
    });
    let index: Vec<Value> = serde_json::from_str(&text).expect("the examples index is JSON");
    index
        .into_iter()
        .map(|entry| {
            let name = entry["name"]
                .as_str()
                .expect("an entry has a name")
                .to_owned();
            let examples = entry["examples"]
                .as_array()
                .expect("an entry has examples")
                .clone();
            (name, examples)
        })
        .collect()
}

/// A delivery of `event` as the host hands it over, the body as GitHub sends it.
fn delivery(event: Option<&str>, body: Vec<u8>) -> Delivery {
    Delivery {
        job: JobContext {
            job_id: "42".into(),
            job_type: "webhook".into(),
            name: "github webhook".into(),
            attempt: 1,
            max_attempts: 3,
            input: "{}".into(),
            idempotency_key: "webhook:github:42".into(),
        },
        delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        event: event.map(str::to_owned),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-github-event".into(), event.unwrap_or_default().into()),
        ],
        body,
        config: vec![("api-base-url".into(), "https://api.github.com".into())],
    }
}

fn deliver(event: &str, body: &Value) -> Result<DeliveryResult, JobError> {
    map_delivery(&delivery(Some(event), body.to_string().into_bytes()))
}

fn permanent(r: Result<DeliveryResult, JobError>) -> String {
    match r {
        Err(JobError::Permanent(m)) => m,
        Err(e) => panic!("not a permanent error: {e:?}"),
        Ok(r) => panic!("mapped to {:?}", r.events),
    }
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The human-written parts of a payload the event's text must contain (empty: no text).
fn written_parts(event: &str, body: &Value) -> Vec<String> {
    match event {
        "push" => body["commits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| text(c, "/message"))
            .collect(),
        "issues" => [text(body, "/issue/title"), text(body, "/issue/body")]
            .into_iter()
            .flatten()
            .collect(),
        "pull_request" => [
            text(body, "/pull_request/title"),
            text(body, "/pull_request/body"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        "issue_comment" => text(body, "/comment/body").into_iter().collect(),
        "release" => [
            text(body, "/release/name").or_else(|| text(body, "/release/tag_name")),
            text(body, "/release/body"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_example_of_the_mapped_events_becomes_the_expected_event() {
    let examples = examples();
    for kind in MAPPED {
        let listed = EXPECTED.iter().filter(|(k, ..)| *k == kind).count();
        let there = examples.get(kind).map_or(0, Vec::len);
        assert_eq!(
            listed, there,
            "{kind}: the package has {there} examples, EXPECTED lists {listed}; list each"
        );
    }
    let mut mapped = 0;
    for &(kind, i, action, expected) in EXPECTED {
        let body = &examples[kind][i];
        let at = format!("{kind}[{i}]");
        assert_eq!(body["action"].as_str().unwrap_or("-"), action, "{at}");
        let result = deliver(kind, body).unwrap_or_else(|e| panic!("{at}: {e:?}"));
        assert!(result.identities.is_empty(), "{at}");
        let Some((event_type, external_id, occurred_at)) = expected else {
            assert!(result.events.is_empty(), "{at}: {:?}", result.events);
            continue;
        };
        mapped += 1;
        let [event] = result.events.as_slice() else {
            panic!("{at}: {} events", result.events.len())
        };
        assert_eq!(event.source, "github", "{at}");
        assert_eq!(event.event_type, event_type, "{at}");
        assert_eq!(event.external_id, external_id, "{at}");
        assert_eq!(event.occurred_at, occurred_at, "{at}");
        let payload: Value = serde_json::from_str(&event.payload).expect("payload is JSON");
        assert_eq!(&payload, body, "{at}: the payload is the delivery body");

        let sender = &body["sender"];
        let actor = event
            .actor
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: actor"));
        assert_eq!(actor.platform, "github", "{at}");
        assert_eq!(actor.platform_user_id, sender["id"].to_string(), "{at}");
        let login = sender["login"].as_str().expect("sender login");
        assert_eq!(actor.platform_username.as_deref(), Some(login), "{at}");
        assert_eq!(
            actor.profile_url.as_deref(),
            Some(format!("https://github.com/{login}").as_str()),
            "{at}"
        );
        assert_eq!(
            actor.avatar_url.as_deref(),
            sender["avatar_url"].as_str(),
            "{at}"
        );

        let parts = written_parts(kind, body);
        match &event.text {
            None => assert!(parts.is_empty(), "{at}: no text, but it has {parts:?}"),
            Some(t) => {
                assert!(!t.trim().is_empty() && !parts.is_empty(), "{at}: {t:?}");
                for p in &parts {
                    assert!(t.contains(p.as_str()), "{at}: {t:?} lacks {p:?}");
                }
            }
        }
    }
    // Each mapped event had at least one example that became an event, with text where
    // GitHub's example has some.
    for kind in MAPPED {
        assert!(
            EXPECTED
                .iter()
                .any(|(k, _, _, e)| *k == kind && e.is_some()),
            "{kind}"
        );
    }
    assert_eq!(mapped, EXPECTED.iter().filter(|r| r.3.is_some()).count());
}

#[test]
fn text_reaches_keyword_matching_for_every_kind_that_has_some() {
    let examples = examples();
    for (kind, i, needle) in [
        ("push", 4, "Initial commit"),
        ("issues", 15, "Spelling error in the README file"),
        ("pull_request", 0, "Update the README with new information"),
        (
            "issue_comment",
            0,
            "You are totally right! I'll get this fixed right away.",
        ),
        ("release", 0, "0.0.1"),
    ] {
        let result = deliver(kind, &examples[kind][i]).expect(kind);
        let text = result.events[0].text.clone().unwrap_or_default();
        assert!(text.contains(needle), "{kind}[{i}]: {text:?}");
    }
}

#[test]
fn the_star_and_watch_deliveries_of_one_star_are_one_event() {
    // GitHub sends both for the same star; the same external id stores it once.
    let examples = examples();
    let star = deliver("star", &examples["star"][0]).expect("star");
    let watch = deliver("watch", &examples["watch"][0]).expect("watch");
    assert_eq!(star.events[0].external_id, watch.events[0].external_id);
    assert_eq!(star.events[0].event_type, watch.events[0].event_type);
}

#[test]
fn the_same_activity_delivered_again_gets_the_same_external_id() {
    // A redelivery (or a second hook on the organisation) has another delivery id and the
    // same body; the id comes from the body only.
    let examples = examples();
    for kind in MAPPED {
        for body in &examples[kind] {
            let mut again = delivery(Some(kind), body.to_string().into_bytes());
            again.delivery_id = "a-different-delivery".into();
            let first = deliver(kind, body).expect(kind);
            let second = map_delivery(&again).expect(kind);
            let ids = |r: &DeliveryResult| {
                r.events
                    .iter()
                    .map(|e| e.external_id.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(&first), ids(&second), "{kind}");
        }
    }
}

#[test]
fn ping_and_every_other_event_give_no_events() {
    let examples = examples();
    assert!(
        examples.contains_key("ping"),
        "the package has ping examples"
    );
    let mut others = 0;
    for (kind, bodies) in &examples {
        if MAPPED.contains(&kind.as_str()) {
            continue;
        }
        for (i, body) in bodies.iter().enumerate() {
            let result = deliver(kind, body).unwrap_or_else(|e| panic!("{kind}[{i}]: {e:?}"));
            assert!(result.events.is_empty(), "{kind}[{i}]: {:?}", result.events);
            others += 1;
        }
    }
    assert!(others > 100, "only {others} examples of other events");
    // A future event GitHub adds, whatever its body.
    let r = map_delivery(&delivery(Some("made_up_event"), b"not json".to_vec())).expect("ok");
    assert!(r.events.is_empty());
}

#[test]
fn malformed_deliveries_fail_permanently_naming_what_is_missing() {
    let examples = examples();
    for (kind, i, pointer) in [
        ("push", 4, "/repository/id"),
        ("push", 4, "/after"),
        ("issues", 15, "/issue/id"),
        ("issues", 15, "/issue/created_at"),
        ("issues", 0, "/action"),
        ("issue_comment", 0, "/comment/id"),
        ("pull_request", 0, "/pull_request/id"),
        ("release", 0, "/release/id"),
        ("star", 0, "/sender/id"),
        ("watch", 0, "/repository/updated_at"),
        ("fork", 0, "/forkee/created_at"),
    ] {
        let mut body = examples[kind][i].clone();
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        body.pointer_mut(if parent.is_empty() { "" } else { parent })
            .and_then(Value::as_object_mut)
            .expect("parent object")
            .remove(key);
        let message = permanent(deliver(kind, &body));
        let field = pointer.trim_start_matches('/').replace('/', ".");
        assert!(
            message.contains(&format!("`{field}`"))
                && message.contains("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            "{kind}[{i}] without {field}: {message}"
        );
    }
    for kind in MAPPED {
        let message = permanent(map_delivery(&delivery(Some(kind), b"payload=%7B".to_vec())));
        assert!(message.contains("not JSON"), "{kind}: {message}");
    }
    let message = permanent(map_delivery(&delivery(None, b"{}".to_vec())));
    assert!(message.contains("X-GitHub-Event"), "{message}");
}
