//! `POST /webhooks/:pluginId`: where platforms push deliveries to plugins that receive
//! webhooks (contract 0.2.0's `webhooks` export).
//!
//! Before anything of a request is stored, in this order:
//!
//! 1. the plugin must be installed and receive webhooks (404 otherwise);
//! 2. it must have a key (its config `webhook-secret`): without one no delivery can be
//!    verified, and every delivery is refused (503) with what the operator must set;
//! 3. the body may be at most `--webhook-max-body-bytes` (413): a `Content-Length` over
//!    it is refused before reading, and a body without one is read only up to it; a
//!    body must arrive within 30 s (408);
//! 4. the signature the plugin's spec names must be an HMAC-SHA256 of the body under
//!    that key (401 when missing, malformed or wrong; compared in constant time);
//! 5. the delivery-id header the spec names must be there (400).
//!
//! A verified delivery is stored as received (every header, names lowercased, and the
//! body's bytes) and queued as one `event_ingestion` job whose Bull id comes from the
//! plugin and the delivery id ([`crate::jobs::webhook::delivery_job`]); then it is
//! acknowledged with 202. The same delivery id again is stored and queued once: 202 with
//! `"status": "duplicate"`. Every refusal is one line of JSON saying what is wrong.
//!
//! The key is never logged or answered; neither is a body. The signature is not secret
//! (it is stored with the other headers and handed to the plugin), the key is.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{ApiError, AppState};
use crate::jobs::webhook::{
    MAX_DELIVERY_ID_BYTES, MAX_EVENT_BYTES, WEBHOOK_SECRET_KEY, delivery_job,
};
use crate::manifest::{Verification, WebhookSpec};
use crate::storage::NewDelivery;

/// The default of `--webhook-max-body-bytes`: 1 MiB holds nearly every delivery (GitHub
/// caps payloads at 25 MB, but typical ones are a few KiB); operators raise it when a
/// platform sends more.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// How long queueing a verified delivery may take before the sender is told to retry
/// (GitHub gives up on an answer after 10 s).
const QUEUE_ANSWER: Duration = Duration::from_secs(5);

/// How long a delivery's body may take to arrive: a sender that trickles it (or stops)
/// holds a connection and a buffer, not the daemon.
const BODY_ARRIVAL: Duration = Duration::from_secs(30);

/// GitHub's signature header and the prefix of its value.
const GITHUB_SIGNATURE: (&str, &str) = ("x-hub-signature-256", "sha256=");

fn refuse(code: StatusCode, message: impl Into<String>) -> Response {
    ApiError(code, message.into()).into_response()
}

/// The header carrying the signature, and what precedes the hex digest in it.
fn signature_header(spec: &WebhookSpec) -> (&str, &str) {
    match &spec.verification {
        Verification::GithubSignature => GITHUB_SIGNATURE,
        Verification::HmacSha256 { header, prefix } => (header.as_str(), prefix.as_str()),
    }
}

/// Why a delivery's signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request has no signature header.
    #[error(
        "the request has no {0} header; deliveries must be signed with the plugin's webhook secret"
    )]
    Missing(String),
    /// The header is there but does not hold one signature in the expected form.
    #[error("the {header} header is not {expected}")]
    Malformed {
        /// The header.
        header: String,
        /// What it should hold.
        expected: String,
    },
    /// The signature is not the body's under the plugin's key.
    #[error(
        "the {0} signature does not match the body; the sender's secret must equal the plugin's `webhook-secret`"
    )]
    Mismatch(String),
}

/// Checks that `body` carries the signature `spec` names, an HMAC-SHA256 under `key`.
///
/// The digest is compared in constant time (`Mac::verify_slice`), so the time taken
/// says nothing about how much of a forged signature was right. A header given twice is
/// refused: which one counts would be a guess.
pub fn verify_signature(
    spec: &WebhookSpec,
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    let (header, prefix) = signature_header(spec);
    let expected = || {
        if prefix.is_empty() {
            "one hex HMAC-SHA256 of the body (64 hex digits)".to_owned()
        } else {
            format!("`{prefix}` followed by a hex HMAC-SHA256 of the body (64 hex digits)")
        }
    };
    let malformed = || SignatureError::Malformed {
        header: header.to_owned(),
        expected: expected(),
    };
    let mut values = headers.get_all(header).iter();
    let value = values
        .next()
        .ok_or_else(|| SignatureError::Missing(header.to_owned()))?;
    if values.next().is_some() {
        return Err(malformed());
    }
    let digest = value
        .to_str()
        .ok()
        .map(str::trim)
        .and_then(|v| v.strip_prefix(prefix))
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .filter(|d| d.len() == 32)
        .ok_or_else(malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| malformed())?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch(header.to_owned()))
}

/// Why a body was not read whole.
enum BodyError {
    /// Over the limit: nothing more was read.
    TooLarge,
    /// Not all there within the time allowed.
    TooSlow,
    /// The connection failed while reading.
    Read(String),
}

/// Reads `body` up to `limit` bytes within `within`: a longer one is abandoned as soon
/// as it passes the limit, whether or not it announced its length, and a slower one at
/// the deadline.
async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Bytes, BodyError> {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if buf.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or(Err(BodyError::TooSlow))
}

/// The value of `header` as text, if the request has it; `Err` names what is wrong with
/// it (not printable ASCII, empty, over `max` bytes).
fn id_header(headers: &HeaderMap, header: &str, max: usize) -> Result<Option<String>, String> {
    let Some(v) = headers.get(header) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| format!("the {header} header is not printable ASCII"))?
        .trim();
    if v.is_empty() {
        return Err(format!("the {header} header is empty"));
    }
    if v.len() > max {
        return Err(format!(
            "the {header} header is {} bytes; at most {max} are accepted",
            v.len()
        ));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the {header} header holds spaces or control characters"
        ));
    }
    Ok(Some(v.to_owned()))
}

/// Every header, names lowercased (the `http` crate keeps them so), values as text
/// (bytes that are not UTF-8 replaced), in the order received (the values of a name
/// that repeats come together, in their order).
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// `POST /webhooks/:pluginId` (see the module docs).
pub(super) async fn receive(
    State(s): State<AppState>,
    Path(plugin_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(plugin) = s
        .registry
        .current()
        .addressed(&plugin_id)
        .filter(|p| p.loaded.receives_webhooks())
    else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no installed plugin `{plugin_id}` receives webhooks; post to \
                 /webhooks/<plugin id>, the id the plugin is installed as"
            ),
        );
    };
    let id = plugin.id().to_owned();
    let Some(spec) = plugin.loaded.manifest.webhook.as_ref() else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("plugin `{id}` gave no webhook spec at load, so it receives no webhooks"),
        );
    };
    let Some(key) = plugin.webhook_secret.as_ref() else {
        tracing::warn!(plugin = %id, "webhook delivery refused: the plugin has no `{WEBHOOK_SECRET_KEY}`");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "plugin `{id}` has no webhook secret, so no delivery can be verified: the \
                 operator must set `{WEBHOOK_SECRET_KEY}` in its config (plugins.json \
                 {{\"{id}\": {{\"config\": {{\"{WEBHOOK_SECRET_KEY}\": \"${{VAR}}\"}}}}}}) \
                 and restart drowl-host"
            ),
        );
    };
    let limit = s.webhook_max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over {limit} bytes, the most this drowl-host accepts \
                 (--webhook-max-body-bytes)"
            ),
        )
    };
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        tracing::warn!(plugin = %id, bytes = announced, limit, "webhook delivery refused: body too large");
        return too_large();
    }
    let body = match read_body(body, limit, BODY_ARRIVAL).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            tracing::warn!(plugin = %id, limit, "webhook delivery refused: body too large");
            return too_large();
        }
        Err(BodyError::TooSlow) => {
            tracing::warn!(plugin = %id, "webhook delivery refused: body too slow");
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    BODY_ARRIVAL.as_secs()
                ),
            );
        }
        Err(BodyError::Read(e)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            );
        }
    };
    if let Err(e) = verify_signature(spec, key.as_bytes(), &headers, &body) {
        tracing::warn!(plugin = %id, "webhook delivery refused: {e}");
        return refuse(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let delivery_header = spec.delivery_id_header.as_str();
    let delivery_id = match id_header(&headers, delivery_header, MAX_DELIVERY_ID_BYTES) {
        Ok(Some(d)) => d,
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the request has no {delivery_header} header, which names the delivery"),
            );
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let event = match spec.event_header.as_deref() {
        Some(h) => match id_header(&headers, h, MAX_EVENT_BYTES) {
            Ok(e) => e,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
        },
        None => None,
    };

    let delivery = NewDelivery {
        plugin_id: id.clone(),
        delivery_id: delivery_id.clone(),
        event: event.clone(),
        headers: header_list(&headers),
        body,
        received_at: chrono::Utc::now(),
    };
    let saved = match s.storage.webhooks.save_delivery(&delivery).await {
        Ok(saved) => saved,
        Err(e) => {
            tracing::error!(plugin = %id, delivery = %delivery_id, "webhook delivery not stored: {e}");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the delivery could not be stored ({e}); it was not accepted, send it again"
                ),
            );
        }
    };
    let job = delivery_job(&id, &delivery_id, event.as_deref());
    // Queued unless the stored row says it was: a delivery stored while Redis was away
    // is queued by its redelivery. Bull keeps one job per id, so two requests racing
    // here queue it once.
    if saved.job_id.is_none() {
        let opts = drowl_bull::JobOptions::new().job_id(job.id.clone());
        let added = tokio::time::timeout(QUEUE_ANSWER, s.queue.add(&job.name, job.data, opts));
        let problem = match added.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("redis: {e}")),
            Err(_) => Some(format!(
                "redis: no answer within {} ms",
                QUEUE_ANSWER.as_millis()
            )),
        };
        if let Some(problem) = problem {
            tracing::error!(plugin = %id, delivery = %delivery_id, "webhook delivery stored but not queued: {problem}");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the delivery was stored but could not be queued ({problem}); send it \
                     again and it will be queued once"
                ),
            );
        }
        if let Err(e) = s
            .storage
            .webhooks
            .set_delivery_job(&id, &delivery_id, &job.id)
            .await
        {
            // Queued: a redelivery would add the same job id, which Bull ignores.
            tracing::warn!(plugin = %id, delivery = %delivery_id, "queued, but the job id was not recorded: {e}");
        }
    }
    let status = if saved.inserted {
        "accepted"
    } else {
        "duplicate"
    };
    tracing::info!(plugin = %id, delivery = %delivery_id, event = event.as_deref().unwrap_or_default(), job = %job.id, status, "webhook delivery received");
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "status": status,
            "pluginId": id,
            "deliveryId": delivery_id,
            "event": event,
            "jobId": job.id,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn github() -> WebhookSpec {
        WebhookSpec {
            verification: Verification::GithubSignature,
            delivery_id_header: "x-github-delivery".into(),
            event_header: Some("x-github-event".into()),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    /// GitHub's own example ("Validating webhook deliveries"): this secret, this body,
    /// this signature.
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &str = "Hello, World!";
    const GITHUB_SIGNATURE_VALUE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_example_verifies() {
        let h = headers(&[("X-Hub-Signature-256", GITHUB_SIGNATURE_VALUE)]);
        assert_eq!(
            verify_signature(
                &github(),
                GITHUB_SECRET.as_bytes(),
                &h,
                GITHUB_BODY.as_bytes()
            ),
            Ok(())
        );
        // Upper-case hex is the same digest.
        let upper = format!("sha256={}", GITHUB_SIGNATURE_VALUE[7..].to_uppercase());
        let h = headers(&[("x-hub-signature-256", &upper)]);
        assert_eq!(
            verify_signature(
                &github(),
                GITHUB_SECRET.as_bytes(),
                &h,
                GITHUB_BODY.as_bytes()
            ),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_missing_or_malformed_signature_is_refused_naming_the_header() {
        let key = GITHUB_SECRET.as_bytes();
        let body = GITHUB_BODY.as_bytes();
        let check = |pairs: &[(&'static str, &str)], body: &[u8], key: &[u8]| {
            verify_signature(&github(), key, &headers(pairs), body)
        };
        let signed = [("x-hub-signature-256", GITHUB_SIGNATURE_VALUE)];
        // Another body, another key.
        assert_eq!(
            check(&signed, b"Hello, World?", key),
            Err(SignatureError::Mismatch("x-hub-signature-256".into()))
        );
        assert_eq!(
            check(&signed, body, b"another secret"),
            Err(SignatureError::Mismatch("x-hub-signature-256".into()))
        );
        assert_eq!(
            check(&[], body, key),
            Err(SignatureError::Missing("x-hub-signature-256".into()))
        );
        // GitHub's deprecated SHA-1 header does not count.
        assert_eq!(
            check(&[("x-hub-signature", "sha1=0123")], body, key),
            Err(SignatureError::Missing("x-hub-signature-256".into()))
        );
        for bad in [
            &GITHUB_SIGNATURE_VALUE[7..], // no prefix
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea", // too short
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=",
        ] {
            let e = check(&[("x-hub-signature-256", bad)], body, key).expect_err(bad);
            assert!(
                matches!(e, SignatureError::Malformed { .. }),
                "{bad}: {e:?}"
            );
            assert_eq!(
                e.to_string(),
                "the x-hub-signature-256 header is not `sha256=` followed by a hex HMAC-SHA256 of the body (64 hex digits)"
            );
        }
        // Twice, even with the right one among them.
        let e = check(
            &[
                ("x-hub-signature-256", GITHUB_SIGNATURE_VALUE),
                ("x-hub-signature-256", "sha256=00"),
            ],
            body,
            key,
        )
        .expect_err("two signatures");
        assert!(matches!(e, SignatureError::Malformed { .. }), "{e:?}");
        // Messages are one line and never hold the key.
        for e in [
            SignatureError::Missing("h".into()),
            SignatureError::Mismatch("h".into()),
        ] {
            assert!(!e.to_string().contains('\n'));
            assert!(!e.to_string().contains(GITHUB_SECRET));
        }
    }

    /// Any platform's header and prefix, from the plugin's spec: none, or its own.
    #[test]
    fn a_generic_hmac_header_is_read_as_the_spec_says() {
        let key = b"k3y";
        let body = br#"{"items":[]}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
        mac.update(body);
        let digest = hex::encode(mac.finalize().into_bytes());
        let spec = |prefix: &str| WebhookSpec {
            verification: Verification::HmacSha256 {
                header: "x-echo-signature".into(),
                prefix: prefix.into(),
            },
            delivery_id_header: "x-echo-delivery".into(),
            event_header: None,
        };
        let h = headers(&[("X-Echo-Signature", &digest)]);
        assert_eq!(verify_signature(&spec(""), key, &h, body), Ok(()));
        let e = verify_signature(&spec("v1="), key, &h, body).expect_err("no prefix");
        assert_eq!(
            e.to_string(),
            "the x-echo-signature header is not `v1=` followed by a hex HMAC-SHA256 of the body (64 hex digits)"
        );
        let h = headers(&[("x-echo-signature", &format!("v1={digest}"))]);
        assert_eq!(verify_signature(&spec("v1="), key, &h, body), Ok(()));
        // GitHub's header means nothing to this spec.
        let h = headers(&[("x-hub-signature-256", &format!("sha256={digest}"))]);
        assert_eq!(
            verify_signature(&spec(""), key, &h, body),
            Err(SignatureError::Missing("x-echo-signature".into()))
        );
    }

    #[test]
    fn delivery_ids_must_be_printable_and_short() {
        let h = |v: &str| headers(&[("x-github-delivery", v)]);
        assert_eq!(
            id_header(
                &h("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                "x-github-delivery",
                200
            ),
            Ok(Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()))
        );
        assert_eq!(
            id_header(&HeaderMap::new(), "x-github-delivery", 200),
            Ok(None)
        );
        for (v, says) in [
            ("", "is empty"),
            ("a b", "spaces or control characters"),
            (&"d".repeat(201), "201 bytes; at most 200"),
        ] {
            let e = id_header(&h(v), "x-github-delivery", 200).expect_err(v);
            assert!(e.contains(says), "{v:?}: {e}");
            assert!(e.starts_with("the x-github-delivery header"), "{e}");
        }
        let mut bytes = HeaderMap::new();
        bytes.insert(
            "x-github-delivery",
            HeaderValue::from_bytes(b"caf\xc3\xa9").expect("opaque bytes"),
        );
        assert_eq!(
            id_header(&bytes, "x-github-delivery", 200),
            Err("the x-github-delivery header is not printable ASCII".into())
        );
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_the_limit_and_no_further() {
        let chunks = |n: usize| {
            let parts: Vec<Result<Bytes, std::io::Error>> = (0..n)
                .map(|_| Ok(Bytes::from_static(&[b'x'; 1024])))
                .collect();
            Body::from_stream(futures::stream::iter(parts))
        };
        let time = Duration::from_secs(10);
        assert_eq!(
            read_body(chunks(4), 4096, time).await.ok().map(|b| b.len()),
            Some(4096)
        );
        assert!(matches!(
            read_body(chunks(5), 4096, time).await,
            Err(BodyError::TooLarge)
        ));
        // An endless body is abandoned once past the limit.
        let endless = Body::from_stream(futures::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(&[b'x'; 1024]))
        }));
        assert!(matches!(
            read_body(endless, 1 << 20, time).await,
            Err(BodyError::TooLarge)
        ));
        // A body that stops coming is abandoned at the deadline.
        let stalled = Body::from_stream(
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))])
                .chain(futures::stream::pending()),
        );
        assert!(matches!(
            read_body(stalled, 4096, Duration::from_millis(100)).await,
            Err(BodyError::TooSlow)
        ));
    }

    #[test]
    fn headers_are_kept_in_order_with_lowercase_names() {
        let h = headers(&[
            ("X-GitHub-Delivery", "d"),
            ("Via", "a"),
            ("via", "b"),
            ("X-Hub-Signature-256", "sha256=00"),
        ]);
        let list = header_list(&h);
        assert_eq!(
            list,
            [
                ("x-github-delivery".to_owned(), "d".to_owned()),
                ("via".to_owned(), "a".to_owned()),
                ("via".to_owned(), "b".to_owned()),
                ("x-hub-signature-256".to_owned(), "sha256=00".to_owned()),
            ]
        );
    }
}
