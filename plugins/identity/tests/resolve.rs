//! The component's batch logic, natively: candidates come from the plugin's own index
//! (earlier batches) and from earlier identities of the same batch, every pair is linked
//! at most once, and each identity comes back with the keys later batches find it by.

use std::collections::BTreeMap;
use std::convert::Infallible;

use drowl_plugin_sdk::identity::LinkConfidence;
use identity_plugin::signals::Identity;
use identity_plugin::{index_key, resolve_batch};
use serde_json::{Value, json};

fn account(id: &str, platform: &str, user: &str, name: &str, metadata: Value) -> Identity {
    let host = match platform {
        "github" => "github.com",
        "zenn" => "zenn.dev",
        "qiita" => "qiita.com",
        _ => "x.com",
    };
    Identity {
        id: id.into(),
        platform: platform.into(),
        platform_user_id: format!("{platform}-{user}"),
        username: Some(user.into()),
        display_name: Some(name.into()),
        profile_url: Some(format!("https://{host}/{user}")),
        metadata,
    }
}

/// An index like the host's: key → identities indexed under it.
#[derive(Default)]
struct Index(BTreeMap<String, Vec<Identity>>);

impl Index {
    fn add(&mut self, result: &drowl_plugin_sdk::identity::ResolveResult, batch: &[Identity]) {
        for entry in &result.index {
            let who = batch
                .iter()
                .find(|i| i.id == entry.identity_id)
                .expect("an entry for an identity of the batch");
            for k in &entry.keys {
                self.0.entry(k.clone()).or_default().push(who.clone());
            }
        }
    }
    fn find(&self, key: &str) -> Result<Vec<Identity>, Infallible> {
        Ok(self.0.get(key).cloned().unwrap_or_default())
    }
}

#[test]
fn a_later_batch_finds_accounts_indexed_by_an_earlier_one() {
    let mut index = Index::default();
    let first = vec![
        account("id-1", "github", "hanako", "山田 花子", Value::Null),
        account("id-2", "github", "taro", "Taro", Value::Null),
    ];
    let r1 = resolve_batch(&first, |k| index.find(k)).unwrap();
    assert!(r1.links.is_empty(), "{:?}", r1.links);
    assert_eq!(r1.index.len(), 2);
    assert!(
        r1.index[0].keys.contains(&"username:hanako".to_owned()),
        "{:?}",
        r1.index[0].keys
    );
    index.add(&r1, &first);

    // Same username and the same Japanese name written with an ideographic space.
    let second = vec![account("id-9", "zenn", "hanako", "山田　花子", Value::Null)];
    let r2 = resolve_batch(&second, |k| index.find(k)).unwrap();
    assert_eq!(r2.links.len(), 1, "{:?}", r2.links);
    let link = &r2.links[0];
    assert_eq!(
        (link.identity_a.as_str(), link.identity_b.as_str()),
        ("id-1", "id-9")
    );
    assert!(link.reason.contains("hanako"), "{}", link.reason);
    assert!(link.score > 0.5 && link.score < 1.0);
}

#[test]
fn identities_of_one_batch_are_compared_with_each_other_once() {
    let shared = json!({ "email": "dev@example.org" });
    let batch = vec![
        account("b", "github", "kenji", "Kenji", shared.clone()),
        account("a", "qiita", "kenji_q", "K", shared),
        account("c", "x", "someone", "Someone", Value::Null),
    ];
    let r = resolve_batch(&batch, |_| Ok::<_, Infallible>(Vec::new())).unwrap();
    assert_eq!(r.links.len(), 1, "{:?}", r.links);
    let link = &r.links[0];
    // Ordered pair, as drowl stores it, whatever order the batch had.
    assert_eq!(
        (link.identity_a.as_str(), link.identity_b.as_str()),
        ("a", "b")
    );
    assert!(matches!(link.confidence, LinkConfidence::High));
    assert_eq!(r.index.len(), 3);
}

#[test]
fn a_common_name_alone_never_links() {
    let batch = vec![
        account("a", "github", "jsmith1", "John Smith", Value::Null),
        account("b", "x", "john_s", "John Smith", Value::Null),
    ];
    let r = resolve_batch(&batch, |_| Ok::<_, Infallible>(Vec::new())).unwrap();
    assert!(r.links.is_empty(), "{:?}", r.links);
    assert!(
        r.index.iter().all(|e| e.keys.contains(&index_key(
            &identity_plugin::signals::Lookup::DisplayName(identity_plugin::signals::name_key(
                "John Smith"
            ))
        ))),
        "both are still indexed by name for later corroboration"
    );
}
