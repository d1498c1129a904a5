//! A webhook-only test plugin: it receives deliveries of `{"items": [{"id", "text",
//! "at", "author"?}]}` signed with a hex HMAC-SHA256 of the body in `X-Echo-Signature`
//! (no prefix), identified by `X-Echo-Delivery`, of the kind `X-Echo-Event` names, and
//! turns each item into one event of source `echo`.
//!
//! It exercises the host's generic webhook path (any header, any prefix), not GitHub's.
//! It also checks the host's promise that a plugin never sees its webhook key: a
//! delivery handled while `config.secret("webhook-secret")` answers fails, so every test
//! that sees a delivery stored has also seen the key kept from the plugin.

use drowl_plugin_sdk::prelude::*;
use drowl_plugin_sdk::webhook::{HmacHeader, Verification};
use serde::Deserialize;

/// The plugin.
pub struct WebhookEcho;

/// The event source it declares and emits.
pub const SOURCE: &str = "echo";

/// What a delivery holds.
#[derive(Debug, Deserialize)]
pub struct Body {
    /// One event each.
    pub items: Vec<Item>,
}

/// One item of a delivery.
#[derive(Debug, Deserialize)]
pub struct Item {
    /// The item's id on the platform: the event's external id.
    pub id: String,
    /// What someone wrote.
    pub text: String,
    /// When, RFC 3339.
    pub at: String,
    /// Who wrote it (an account on `echo`), if known.
    #[serde(default)]
    pub author: Option<String>,
}

/// The events and identities a delivery becomes: one event per item, of the delivery's
/// kind (`message` when it names none), the item as payload.
pub fn events(delivery_event: Option<&str>, body: &Body) -> DeliveryResult {
    let kind = delivery_event.unwrap_or("message");
    let events = body
        .items
        .iter()
        .map(|item| {
            let payload = serde_json::json!({
                "id": item.id, "text": item.text, "at": item.at, "author": item.author,
            });
            let mut event = Event::builder(&item.id, SOURCE, kind, &item.at)
                .text(&item.text)
                .payload_json(&payload);
            if let Some(a) = &item.author {
                event = event.actor(IdentityObservation::new(SOURCE, a).username(a));
            }
            event.build()
        })
        .collect();
    DeliveryResult {
        events,
        identities: Vec::new(),
    }
}

impl WebhookManifest for WebhookEcho {
    fn manifest() -> Manifest {
        Manifest::builder("webhook-echo", "Webhook echo", env!("CARGO_PKG_VERSION"))
            .description("Turns signed JSON deliveries into echo events, for the host's tests")
            .capability(Capability::Webhook)
            .source(SOURCE)
            .config(
                ConfigField::secret("webhook-secret", "Webhook secret")
                    .description("The key deliveries are signed with; read by drowl-host only"),
            )
            .min_host_version("0.2.0")
            .build()
    }
}

impl Webhook for WebhookEcho {
    fn spec() -> WebhookSpec {
        WebhookSpec {
            verification: Verification::HmacSha256(HmacHeader {
                header: "x-echo-signature".into(),
                prefix: String::new(),
            }),
            delivery_id_header: "x-echo-delivery".into(),
            event_header: Some("x-echo-event".into()),
        }
    }

    fn handle(delivery: Delivery) -> Result<DeliveryResult, JobError> {
        if config::secret("webhook-secret").is_some() {
            return Err(JobError::permanent(
                "drowl-host handed this plugin its webhook-secret, which it must never see",
            ));
        }
        let body: Body = delivery.json()?;
        Ok(events(delivery.event.as_deref(), &body))
    }
}

drowl_plugin_sdk::webhook_plugin!(WebhookEcho);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_becomes_an_echo_event_with_its_author() {
        let body: Body = serde_json::from_str(
            r#"{"items": [{"id": "1", "text": "hello", "at": "2024-05-01T10:00:00Z", "author": "ada"},
                          {"id": "2", "text": "again", "at": "2024-05-01T10:01:00Z"}]}"#,
        )
        .expect("body");
        let r = events(Some("post"), &body);
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0].source, "echo");
        assert_eq!(r.events[0].event_type, "post");
        assert_eq!(r.events[0].text.as_deref(), Some("hello"));
        assert_eq!(
            r.events[0]
                .actor
                .as_ref()
                .map(|a| a.platform_user_id.as_str()),
            Some("ada")
        );
        assert!(r.events[1].actor.is_none());
        assert_eq!(events(None, &body).events[1].event_type, "message");
    }
}
