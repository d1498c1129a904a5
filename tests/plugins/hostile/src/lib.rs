//! A deliberately misbehaving ingestion plugin for drowl-host's tests.
//!
//! `input.mode` picks the behaviour, so one component covers every fault the host must
//! contain: endless loops, memory bombs, deep recursion, panics, oversized output, log
//! floods, giant host-call arguments, leaked resource handles, stderr floods, secret
//! leaks (declared secrets and plain config values), requests to undeclared hosts, key
//! traversal, and well-behaved paging for the baseline.

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
    /// In `stderr-flood` mode, panic after printing.
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
        Manifest::builder("hostile", "Hostile test plugin", env!("CARGO_PKG_VERSION"))
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
