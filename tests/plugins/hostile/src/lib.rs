//! A deliberately misbehaving ingestion plugin for drowl-host's tests.
//!
//! `input.mode` picks the behaviour, so one component covers every fault the host must
//! contain: endless loops, memory bombs, deep recursion, panics, oversized output, log
//! floods, giant host-call arguments, leaked resource handles, stderr floods, secret
//! leaks (declared secrets and plain config values, in logs, errors, cursors and
//! follow-ups), NUL in every kind of output field, identities on other platforms, requests
//! to undeclared hosts, key traversal, sleeps and waits past the deadline, and well-behaved
//! paging for the baseline.

use drowl_plugin_sdk::ingestion::{IngestBatch, IngestRequest, Ingestion};
use drowl_plugin_sdk::{Capability, ConfigField, Event, IdentityObservation, JobError, Manifest};
use drowl_plugin_sdk::{config, http, kv, log, objects, queue};
use serde::Deserialize;

/// The plugin.
pub struct Hostile;

/// Linear memory the manifest requests.
pub const REQUESTED_MEMORY_BYTES: u64 = 192 << 20;
/// Time per job the manifest requests, in milliseconds.
pub const REQUESTED_TIMEOUT_MS: u64 = 30_000;

/// The version its manifest declares: the package's, or a later one in the build with
/// the `next-version` feature (the second build upgrade tests install).
pub const VERSION: &str = if cfg!(feature = "next-version") {
    concat!(env!("CARGO_PKG_VERSION"), "+next")
} else {
    env!("CARGO_PKG_VERSION")
};

/// A buffer of `mib` MiB, built without an intermediate copy.
fn mib(mib: u32) -> Vec<u8> {
    vec![b'x'; mib as usize * 1024 * 1024]
}

#[derive(Debug, Deserialize)]
struct Input {
    mode: String,
    #[serde(default = "one")]
    count: u32,
    #[serde(default = "one")]
    pages: u32,
    #[serde(default)]
    url: Option<String>,
    /// Prefix for event ids in `ok` mode, so many jobs can store distinct events.
    #[serde(default)]
    tag: Option<String>,
    /// In `stderr-flood` and `log-fields` modes, panic after printing or logging.
    #[serde(default)]
    then_panic: bool,
    /// In `sleep` mode, how long to sleep, in milliseconds.
    #[serde(default)]
    ms: u64,
    /// In `residue-scan` mode, plant the marker first (the scan's positive control).
    #[serde(default)]
    plant_first: bool,
    /// In `leak-config` mode, the config key to leak (default `label`).
    #[serde(default)]
    key: Option<String>,
    /// In `nul-in`, `leak-secret-in` and `foreign-identity` modes, the output field to
    /// spoil.
    #[serde(default)]
    field: String,
}

/// The marker of the residue modes: `tag`'s bytes XOR 0x55, so the plain tag in this
/// job's own input never matches it.
fn residue_byte(tag: &[u8], i: usize) -> u8 {
    tag[i % tag.len()] ^ 0x55
}

/// Fills `mib` MiB of heap with the marker of `tag` and leaves it there.
fn plant_residue(tag: &[u8], mib: u32) {
    let mut v = vec![0u8; mib as usize * 1024 * 1024];
    for (i, b) in v.iter_mut().enumerate() {
        *b = residue_byte(tag, i);
    }
    std::hint::black_box(&v);
    std::mem::forget(v);
}

/// Grows linear memory by `mib` MiB, then reads every byte of it and counts the places
/// where a full marker of `tag` starts.
fn scan_residue(tag: &[u8], mib: u32) -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_grow(0, mib as usize * 16);
        let size = core::arch::wasm32::memory_size(0) * 65536;
        #[allow(
            unsafe_code,
            reason = "a wasm guest may read any byte of its own linear memory; that is the test"
        )]
        let read = |at: usize| unsafe { core::ptr::read_volatile(at as *const u8) };
        let mut found = 0;
        let mut at = 1;
        while at + tag.len() <= size {
            if read(at) == residue_byte(tag, 0)
                && (1..tag.len()).all(|j| read(at + j) == residue_byte(tag, j))
            {
                found += 1;
                at += tag.len();
            } else {
                at += 1;
            }
        }
        found
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (tag, mib);
        0
    }
}

fn one() -> u32 {
    1
}

/// Lowercase hex, one of the encodings the host must recognise a secret in.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A well-formed page whose `field` holds a NUL character.
fn nul_in(field: &str) -> Result<IngestBatch, JobError> {
    let mut e = event("nul", "clean");
    let mut batch = IngestBatch::last_page(Vec::new());
    let mut actor = e
        .actor
        .take()
        .unwrap_or_else(|| IdentityObservation::new("test", "1"));
    match field {
        "event-type" => e.event_type = "pu\0sh".into(),
        "external-id" => e.external_id = "nul\0".into(),
        "text" => e.text = Some("te\0xt".into()),
        "payload" => e.payload = r#"{"a":"\u0000"}"#.into(),
        "actor.platform-user-id" => actor.platform_user_id = "user\0".into(),
        "actor.display-name" => actor.display_name = Some("Mal\0lory".into()),
        "identities.profile-url" => batch
            .identities
            .push(IdentityObservation::new("test", "user-2").profile_url("https://example.com/\0")),
        "identities.metadata-json" => {
            let mut o = IdentityObservation::new("test", "user-2");
            o.metadata_json = Some(r#"{"bio":"\u0000"}"#.into());
            batch.identities.push(o);
        }
        "next-cursor" => batch = batch.with_cursor("2\0"),
        other => return Err(JobError::permanent(format!("unknown field {other:?}"))),
    }
    e.actor = Some(actor);
    batch.events.push(e);
    Ok(batch)
}

/// A page or a follow-up carrying the `token` secret in `field`.
fn leak_secret_in(field: &str) -> Result<IngestBatch, JobError> {
    let token = config::secret("token").unwrap_or_default();
    let page = || IngestBatch::last_page(vec![event("leak", "clean")]);
    let enqueue = |name: &str, input: serde_json::Value| {
        queue::enqueue("event_ingestion", name, &input)
            .map_err(|e| JobError::permanent(queue::describe_error(&e)))
    };
    match field {
        "next-cursor" => Ok(page().with_cursor(format!("page=2&auth={token}"))),
        "next-cursor-hex" => Ok(page().with_cursor(format!("state-{}", hex(&token)))),
        "follow-up-name" => {
            enqueue(&format!("resume-{token}"), serde_json::json!({}))?;
            Ok(page())
        }
        "follow-up-input" => {
            enqueue("resume", serde_json::json!({ "auth": { "token": token } }))?;
            Ok(page())
        }
        "source" => {
            let e = Event::builder("leak", &token, "probe", "2024-01-02T03:04:05Z").build();
            Ok(IngestBatch::last_page(vec![e]))
        }
        other => Err(JobError::permanent(format!("unknown field {other:?}"))),
    }
}

/// A page reporting an account on `github`, a platform this plugin has no source for:
/// as an event's actor, or in the page's identities.
fn foreign_identity(field: &str) -> Result<IngestBatch, JobError> {
    let octocat = IdentityObservation::new("github", "583231")
        .username("octocat")
        .display_name("Not The Octocat")
        .profile_url("https://example.com/impostor");
    match field {
        "actor" => {
            let e = Event::builder("foreign", "test", "probe", "2024-01-02T03:04:05Z")
                .actor(octocat)
                .build();
            Ok(IngestBatch::last_page(vec![e]))
        }
        "identities" => {
            let mut batch = IngestBatch::last_page(vec![event("foreign", "clean")]);
            batch.identities.push(octocat);
            Ok(batch)
        }
        other => Err(JobError::permanent(format!("unknown field {other:?}"))),
    }
}

fn event(id: &str, text: &str) -> Event {
    Event::builder(id, "test", "probe", "2024-01-02T03:04:05Z")
        .actor(IdentityObservation::new("test", "user-1").username("tester"))
        .text(text)
        .payload_json(&serde_json::json!({ "id": id, "text": text }))
        .build()
}

#[allow(
    clippy::only_used_in_recursion,
    reason = "the recursion itself is the point"
)]
fn recurse(n: u64, pad: [u64; 16]) -> u64 {
    if n == 0 {
        pad[0]
    } else {
        recurse(n + 1, pad).wrapping_add(pad[(n % 16) as usize])
    }
}

impl Ingestion for Hostile {
    fn manifest() -> Manifest {
        Manifest::builder("hostile", "Hostile test plugin", VERSION)
            .description("Misbehaves on purpose, as its job input asks, to test the sandbox")
            .capability(Capability::EventIngestion)
            .source("test")
            .config(
                ConfigField::url("target", "A server the plugin may reach")
                    .default_value("http://127.0.0.1:9"),
            )
            .config(ConfigField::secret(
                "token",
                "A secret the plugin will try to leak",
            ))
            // Declared a plain string, so only the operator can say it is a secret.
            .config(ConfigField::string(
                "label",
                "A plain value the plugin will try to leak",
            ))
            .outbound_host("{{target}}")
            // Requests the operator's configuration may cap (tests check both ways).
            .max_memory_bytes(REQUESTED_MEMORY_BYTES)
            .timeout_ms(REQUESTED_TIMEOUT_MS)
            .build()
    }

    fn ingest(req: IngestRequest) -> Result<IngestBatch, JobError> {
        let input: Input = req.job.input_as()?;
        match input.mode.as_str() {
            // Pages of `count` events each, `pages` pages, with a numeric cursor.
            "ok" => {
                let page: u32 = req
                    .cursor
                    .as_deref()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let tag = input.tag.as_deref().unwrap_or("");
                let events = (0..input.count)
                    .map(|i| {
                        event(
                            &format!("{tag}p{page}-e{i}"),
                            &format!("event {i} of page {page} mentions Rust"),
                        )
                    })
                    .collect();
                let next = page + 1;
                if next < input.pages {
                    Ok(IngestBatch::page(events, next.to_string()))
                } else {
                    Ok(IngestBatch::last_page(events).with_cursor(next.to_string()))
                }
            }
            // Leave `count` MiB of a marker in linear memory for a later job to look for.
            "residue-plant" => {
                let tag = input.tag.clone().unwrap_or_else(|| "residue".into());
                plant_residue(tag.as_bytes(), input.count);
                Ok(IngestBatch::last_page(vec![event("residue", "planted")]))
            }
            // Look through all of linear memory (grown by `count` MiB) for a marker an
            // earlier job planted: an instance slot reused without being cleared would
            // show another job's data.
            "residue-scan" => {
                let tag = input.tag.clone().unwrap_or_else(|| "residue".into());
                if input.plant_first {
                    plant_residue(tag.as_bytes(), 1);
                }
                match scan_residue(tag.as_bytes(), input.count) {
                    0 => Ok(IngestBatch::last_page(vec![event("residue", "clean")])),
                    n => Err(JobError::permanent(format!(
                        "found {n} markers in linear memory"
                    ))),
                }
            }
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                let v = recurse(1, [7; 16]);
                Ok(IngestBatch::last_page(vec![event(
                    &v.to_string(),
                    "unreachable",
                )]))
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "abort" => std::process::abort(),
            "exit" => std::process::exit(3),
            "huge-output" => {
                // One event whose payload is larger than the host's batch limit.
                let big = "x".repeat(input.count as usize * 1024 * 1024);
                let e = Event::builder("huge", "test", "probe", "2024-01-02T03:04:05Z")
                    .payload_json(&serde_json::json!({ "big": big }))
                    .build();
                Ok(IngestBatch::last_page(vec![e]))
            }
            "many-events" => {
                let events = (0..input.count)
                    .map(|i| event(&format!("m{i}"), "x"))
                    .collect();
                Ok(IngestBatch::last_page(events))
            }
            "log-flood" => {
                for i in 0..input.count {
                    log::info(&format!("flood line {i}"));
                }
                Ok(IngestBatch::last_page(vec![event("after-flood", "done")]))
            }
            // `count` log lines of 32 fields of 4 KiB each: 128 KiB a line, so a thousand
            // lines would hand the host 128 MiB to keep for one job.
            "log-fields" => {
                let value = "v".repeat(4096);
                let fields: Vec<(String, String)> = (0..32)
                    .map(|i| (format!("field-{i}"), value.clone()))
                    .collect();
                let refs: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                for i in 0..input.count {
                    log::log(log::Level::Info, &format!("line {i}"), &refs);
                }
                if input.then_panic {
                    panic!("panicked after a log-fields flood");
                }
                Ok(IngestBatch::last_page(vec![event("after-fields", "done")]))
            }
            // `count` progress reports alternating between two values, then 100.
            "progress-flood" => {
                for i in 0..input.count {
                    queue::progress(if i % 2 == 0 { 1 } else { 2 });
                }
                queue::progress(100);
                Ok(IngestBatch::last_page(vec![]))
            }
            // A next-cursor of `count` KiB: the host stores cursors and sends them back.
            "cursor-huge" => Ok(IngestBatch::page(
                vec![],
                "c".repeat(input.count as usize * 1024),
            )),
            // `count` key-value writes of 1 MiB, stopping at the first refusal; the number
            // written is the event's text.
            "kv-flood" => {
                let value = mib(1);
                let mut written = 0;
                for i in 0..input.count {
                    if kv::set(&format!("flood-{i}"), &value).is_err() {
                        break;
                    }
                    written += 1;
                }
                Ok(IngestBatch::last_page(vec![event(
                    "kv-flood",
                    &written.to_string(),
                )]))
            }
            // `count` objects of 8 MiB, stopping at the first refusal; the number written
            // is the event's text.
            "objects-flood" => {
                let value = mib(8);
                let mut written = 0;
                for i in 0..input.count {
                    if objects::put(&format!("flood/{i}"), &value, "application/octet-stream")
                        .is_err()
                    {
                        break;
                    }
                    written += 1;
                }
                Ok(IngestBatch::last_page(vec![event(
                    "objects-flood",
                    &written.to_string(),
                )]))
            }
            // One log line of `count` MiB: the host must refuse to copy it when it is over
            // the per-call budget, and keep only a bounded prefix when it is not.
            "log-huge" => {
                let line = "x".repeat(input.count as usize * 1024 * 1024);
                log::info(&line);
                drop(line);
                Ok(IngestBatch::last_page(vec![event(
                    "after-huge-log",
                    "done",
                )]))
            }
            // A KV value of `count` MiB: over the KV cap is an error the plugin sees; over
            // the per-call budget the host never copies it.
            "kv-huge" => {
                kv::set("huge", &mib(input.count))
                    .map_err(|e| JobError::permanent(kv::describe_error(&e)))?;
                Ok(IngestBatch::last_page(vec![event("kv-huge", "stored")]))
            }
            // `count` WASI output-stream handles, never dropped.
            "handles" => {
                for _ in 0..input.count {
                    std::mem::forget(wasip2::cli::stdout::get_stdout());
                }
                Ok(IngestBatch::last_page(vec![event("handles", "leaked")]))
            }
            // `count` lines of 100 bytes on stderr, then optionally a panic.
            "stderr-flood" => {
                for i in 0..input.count {
                    eprintln!("{i:>8} {}", "y".repeat(90));
                }
                if input.then_panic {
                    panic!("panicked after a stderr flood");
                }
                Ok(IngestBatch::last_page(vec![event("after-stderr", "done")]))
            }
            "leak-secret" => {
                let token = config::secret("token").unwrap_or_default();
                log::info(&format!("my token is {token}"));
                log::log(log::Level::Warn, "fields too", &[("token", &token)]);
                Err(JobError::permanent(format!(
                    "failing with token {token} in the message"
                )))
            }
            // Leaks a config value the manifest declares as plain (not secret): whether it
            // is redacted is the operator's decision (`${VAR}` or `secrets`), not the
            // manifest's.
            "leak-config" => {
                let key = input.key.as_deref().unwrap_or("label");
                let value = config::get(key).unwrap_or_default();
                log::info(&format!("my {key} is {value}"));
                Err(JobError::permanent(format!(
                    "failing with {key} {value} in the message"
                )))
            }
            "bad-source" => {
                let e = Event::builder("x", "github", "probe", "2024-01-02T03:04:05Z").build();
                Ok(IngestBatch::last_page(vec![e]))
            }
            "bad-time" => {
                let e = Event::builder("x", "test", "probe", "yesterday").build();
                Ok(IngestBatch::last_page(vec![e]))
            }
            "bad-payload" => {
                let e = Event::builder("x", "test", "probe", "2024-01-02T03:04:05Z")
                    .payload_raw("{not json".into())
                    .build();
                Ok(IngestBatch::last_page(vec![e]))
            }
            // Output the host must refuse as invalid, each naming its field: NUL in
            // `input.field`, a secret in it, or an identity on another platform.
            "nul-in" => nul_in(&input.field),
            "leak-secret-in" => leak_secret_in(&input.field),
            "foreign-identity" => foreign_identity(&input.field),
            "http" => {
                let url = input
                    .url
                    .unwrap_or_else(|| "http://undeclared.invalid/".into());
                let resp = http::get(&url)?;
                let body = resp.text();
                Ok(IngestBatch::last_page(vec![event(
                    "http",
                    &format!("{} {}", resp.status, body),
                )]))
            }
            "kv" => {
                let n: u32 = kv::get_json("counter")?.unwrap_or(0) + 1;
                kv::set_json("counter", &n)?;
                Ok(IngestBatch::last_page(vec![event(
                    &format!("kv-{n}"),
                    &format!("counter {n}"),
                )]))
            }
            "objects" => {
                let key = input.url.unwrap_or_else(|| "cache/a.json".into());
                let full = objects::put(&key, b"{}", "application/json")?;
                let back = objects::get(&key)?.map(|b| b.len()).unwrap_or(0);
                Ok(IngestBatch::last_page(vec![event(
                    "obj",
                    &format!("{full} {back}"),
                )]))
            }
            "enqueue" => {
                queue::enqueue(
                    "keyword_extraction",
                    "follow-up",
                    &serde_json::json!({ "keywords": ["Rust"] }),
                )
                .map_err(|e| JobError::permanent(queue::describe_error(&e)))?;
                queue::progress(50);
                Ok(IngestBatch::last_page(vec![event("enq", "enqueued")]))
            }
            // Enqueues `count` copies of itself (a job that multiplies), ignoring refusals:
            // the host's depth and lineage caps must bound the growth.
            "fanout" => {
                let mut refused = 0;
                for _ in 0..input.count {
                    let copy = serde_json::json!({ "pluginId": "hostile", "mode": "fanout", "count": input.count });
                    if queue::enqueue("event_ingestion", "fanout", &copy).is_err() {
                        refused += 1;
                    }
                }
                queue::progress(if refused == 0 { 100 } else { 99 });
                Ok(IngestBatch::last_page(vec![]))
            }
            // Enqueues an ingestion job for the `github` plugin (a confused deputy):
            // refused unless the operator granted it.
            "enqueue-other" => {
                queue::enqueue(
                    "event_ingestion",
                    "deputy",
                    &serde_json::json!({ "pluginId": "github", "user": "octocat" }),
                )
                .map_err(|e| JobError::permanent(queue::describe_error(&e)))?;
                Ok(IngestBatch::last_page(vec![]))
            }
            // Sleeps `ms` milliseconds (WASI clocks), reporting progress before and after:
            // a job that is still running when the daemon times it out or shuts down.
            "sleep" => {
                queue::progress(1);
                std::thread::sleep(std::time::Duration::from_millis(input.ms));
                queue::progress(100);
                Ok(IngestBatch::last_page(vec![]))
            }
            // One `wasi:io/poll` on a monotonic-clock pollable of `ms` milliseconds (0: the
            // largest duration WASI can express): a guest waiting in WASI, running no wasm.
            "poll" => {
                queue::progress(1);
                let nanos = match input.ms {
                    0 => u64::MAX,
                    ms => ms.saturating_mul(1_000_000),
                };
                let clock = wasip2::clocks::monotonic_clock::subscribe_duration(nanos);
                wasip2::io::poll::poll(&[&clock]);
                queue::progress(100);
                Ok(IngestBatch::last_page(vec![]))
            }
            // Attempts up to `count` fail with a retryable error that names no delay (so the
            // job's own backoff applies); later attempts succeed.
            "flaky" => {
                if req.job.attempt <= input.count {
                    Err(JobError::retryable(format!(
                        "flaky attempt {}",
                        req.job.attempt
                    )))
                } else {
                    Ok(IngestBatch::last_page(vec![]))
                }
            }
            "retry" => Err(JobError::retry_after("upstream hiccup", 1500)),
            "rate-limited" => Err(JobError::rate_limited("slow down", 2000)),
            other => Err(JobError::permanent(format!("unknown mode {other:?}"))),
        }
    }
}

drowl_plugin_sdk::ingestion_plugin!(Hostile);
