//! The producer side: `Queue::add` must write exactly what the real bull client's
//! `queue.add` writes (ids, lists, sets, hash fields), and jobs added from Rust must be
//! processed by a real Bull worker. Every test holds `RedisInUse`, so a test restarting
//! the machine's Redis (in any `cargo test` on the machine) waits for it.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use drowl_bull::{JobOptions, JobState, Queue, QueueConfig};
use fred::prelude::{HashesInterface, KeysInterface, ListInterface, SortedSetsInterface};
use serde_json::{Value, json};
use support::*;

fn specs() -> Value {
    json!([
        {"data": {"a": 1}},
        {"name": "named", "data": {"b": "x", "nested": [1, 2, {"c": null}]},
         "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 100},
                  "removeOnComplete": true, "timeout": 5000, "stackTraceLimit": 2}},
        {"data": {}, "opts": {"jobId": "custom", "priority": 2}},
        {"data": {"dup": true}, "opts": {"jobId": "custom"}},
        {"data": {}, "opts": {"priority": 1}},
        {"data": {}, "opts": {"lifo": true}},
        {"data": {}, "opts": {"delay": 60000}},
        {"data": {"n": 1}, "opts": {"backoff": 500, "removeOnFail": {"age": 60, "count": 5}}},
        {"data": {}, "opts": {"priority": 2}},
        {"name": "str", "data": "plain string"},
        {"name": "hourly", "data": {}, "opts": {"repeat": {"every": 3_600_000}}},
        {"name": "nightly", "data": {"k": 1},
         "opts": {"jobId": "night", "repeat": {"cron": "0 3 * * *", "tz": "Europe/Berlin"}}},
        {"name": "five", "data": {}, "opts": {"repeat": {"cron": "*/5 * * * *", "limit": 10}}}
    ])
}

async fn rust_add_all(q: &Queue, specs: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for s in specs.as_array().expect("array") {
        let name = s
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("__default__");
        let opts: JobOptions =
            serde_json::from_value(s.get("opts").cloned().unwrap_or(json!({}))).expect("opts");
        let id = q.add(name, s["data"].clone(), opts).await.expect("add");
        ids.push(id.to_string());
    }
    ids
}

/// Everything the layout holds for a queue, with time-dependent values masked.
async fn snapshot(q: &Queue, ids: &[String]) -> BTreeMap<String, Value> {
    let c = q.client();
    let mut out = BTreeMap::new();
    let wait: Vec<String> = c.lrange(q.key("wait"), 0, -1).await.expect("wait");
    out.insert("wait".into(), json!(wait));
    let prio: Vec<(String, f64)> = c
        .zrange(q.key("priority"), 0, -1, None, false, None, true)
        .await
        .expect("priority");
    out.insert("priority".into(), json!(prio));
    let delayed: Vec<String> = c
        .zrange(q.key("delayed"), 0, -1, None, false, None, false)
        .await
        .expect("delayed");
    out.insert("delayed".into(), json!(delayed));
    let repeat: Vec<(String, f64)> = c
        .zrange(q.key("repeat"), 0, -1, None, false, None, true)
        .await
        .expect("repeat");
    out.insert("repeat".into(), json!(repeat));
    let counter: Option<String> = c.get(q.key("id")).await.expect("id");
    out.insert("id".into(), json!(counter));
    for id in ids {
        let mut h: HashMap<String, String> = c.hgetall(q.key(id)).await.expect("hash");
        assert!(h.contains_key("timestamp"), "job {id} has a timestamp");
        h.insert("timestamp".into(), "<masked>".into());
        let mut fields = serde_json::Map::new();
        for (k, v) in h {
            let v = match k.as_str() {
                "data" | "opts" => {
                    let mut parsed: Value = serde_json::from_str(&v).expect("json field");
                    if let Some(o) = parsed.as_object_mut() {
                        o.insert("timestamp".into(), json!("<masked>"));
                        if o.contains_key("repeat") {
                            // delay = next run − now differs by the milliseconds between adds
                            o.insert("delay".into(), json!("<masked>"));
                        }
                    }
                    parsed
                }
                "delay" if id.starts_with("repeat:") => json!("<masked>"),
                _ => json!(v),
            };
            fields.insert(k, v);
        }
        out.insert(format!("job {id}"), Value::Object(fields));
    }
    out
}

#[tokio::test]
async fn add_writes_what_bull_writes() {
    let _redis = RedisInUse::acquire();
    let specs = specs();
    let bull_q = unique_queue("add-bull");
    let rust_q = unique_queue("add-rust");
    let out = node("bull_tool.js", &["add", &specs.to_string()], &bull_q, &[]);
    assert_success("bull add", &out);
    let bull_ids: Vec<String> = serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .expect("ids")
        .into_iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();

    let bq = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(bull_q.clone()))
        .await
        .expect("connect");
    let rq = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(rust_q.clone()))
        .await
        .expect("connect");
    let rust_ids = rust_add_all(&rq, &specs).await;
    assert_eq!(rust_ids, bull_ids, "same ids in the same order");
    assert_eq!(rust_ids[3], "custom", "duplicate custom id returns the id");

    let mut unique = bull_ids.clone();
    unique.sort();
    unique.dedup();
    let a = snapshot(&bq, &unique).await;
    let b = snapshot(&rq, &unique).await;
    for (k, v) in &a {
        assert_eq!(
            Some(v),
            b.get(k),
            "{k} differs (left: bull, right: drowl-bull)"
        );
    }
    assert_eq!(a.len(), b.len());

    // And the real client reads Rust-added jobs as its own.
    let out = node(
        "bull_tool.js",
        &["inspect", &json!(unique).to_string()],
        &rust_q,
        &[],
    );
    assert_success("bull inspect", &out);
    let seen: Value = serde_json::from_slice(&out.stdout).expect("inspect json");
    assert_eq!(seen["custom"]["state"], "waiting");
    assert_eq!(seen[&rust_ids[6]]["state"], "delayed");
    assert_eq!(
        seen[&rust_ids[1]]["json"]["opts"]["backoff"]["type"],
        "exponential"
    );
    assert_eq!(seen[&rust_ids[9]]["json"]["data"], "plain string");

    bq.obliterate().await.expect("clean");
    rq.obliterate().await.expect("clean");
}

#[tokio::test]
async fn paused_queue_receives_adds_in_paused_list() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("paused-add");
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name))
        .await
        .expect("connect");
    q.pause().await.expect("pause");
    assert!(q.is_paused().await.expect("is_paused"));
    let id = q
        .add("x", json!({}), JobOptions::new().priority(3))
        .await
        .expect("add");
    let counts = q.get_job_counts().await.expect("counts");
    assert_eq!((counts.paused, counts.waiting), (1, 0));
    assert_eq!(
        q.get_job(id.as_str())
            .await
            .expect("get")
            .expect("job")
            .state,
        JobState::Paused
    );
    q.resume().await.expect("resume");
    let counts = q.get_job_counts().await.expect("counts");
    assert_eq!((counts.paused, counts.waiting), (0, 1));
    assert!(!q.is_paused().await.expect("is_paused"));
    q.obliterate().await.expect("clean");
}

#[tokio::test]
async fn real_bull_worker_processes_rust_added_jobs() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("bull-worker");
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name.clone()))
        .await
        .expect("connect");
    let ok = q
        .add(
            "__default__",
            json!({"action": "return", "value": {"v": 7}}),
            JobOptions::new(),
        )
        .await
        .expect("add");
    let failing = q
        .add(
            "__default__",
            json!({"action": "fail", "message": "nope"}),
            JobOptions::new()
                .attempts(2)
                .backoff(drowl_bull::Backoff::fixed(100)),
        )
        .await
        .expect("add");
    let delayed = q
        .add(
            "__default__",
            json!({"action": "return", "value": 1}),
            JobOptions::new().delay(300),
        )
        .await
        .expect("add");
    let mut bull = std::process::Command::new("node");
    bull.arg("bull_tool.js")
        .args(["work", "2"])
        .current_dir(interop_dir())
        .env("QUEUE", &name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _bull = Proc {
        child: bull.spawn().expect("node"),
        name: "bull worker".into(),
    };
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let c = q.get_job_counts().await.expect("counts");
        if c.completed == 2 && c.failed == 1 {
            break;
        }
        assert!(Instant::now() < end, "bull worker did not finish: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ok = q.get_job(ok.as_str()).await.expect("get").expect("job");
    assert_eq!(ok.returnvalue, Some(json!({"v": 7})));
    let failing = q
        .get_job(failing.as_str())
        .await
        .expect("get")
        .expect("job");
    assert_eq!(failing.attempts_made, 2);
    assert_eq!(failing.failed_reason.as_deref(), Some("nope"));
    let delayed = q
        .get_job(delayed.as_str())
        .await
        .expect("get")
        .expect("job");
    assert!(delayed.processed_on.expect("processed") >= delayed.timestamp.expect("ts") + 300);
    q.obliterate().await.expect("clean");
}

/// Schedules the real client registers read as its `getRepeatableJobs()` reads them, and
/// `remove_repeatable_by_key` removes one with its pending run (the run id rebuilt from
/// the key is the one Bull created).
#[tokio::test]
async fn repeatables_from_bull_are_listed_and_removed() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("repeatables");
    let specs = json!([
        {"name": "nightly", "data": {"k": 1},
         "opts": {"jobId": "night", "repeat": {"cron": "0 3 * * *", "tz": "Europe/Berlin"}}},
        {"name": "hourly", "data": {}, "opts": {"repeat": {"every": 3_600_000}}}
    ]);
    let out = node("bull_tool.js", &["add", &specs.to_string()], &name, &[]);
    assert_success("bull add", &out);
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name))
        .await
        .expect("connect");
    let listed = q.get_repeatable_jobs().await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let nightly = listed
        .iter()
        .find(|r| r.name == "nightly")
        .expect("nightly listed");
    assert_eq!(nightly.id.as_deref(), Some("night"));
    assert_eq!(nightly.cron.as_deref(), Some("0 3 * * *"));
    assert_eq!(nightly.tz.as_deref(), Some("Europe/Berlin"));
    assert_eq!(nightly.every, None);
    let hourly = listed.iter().find(|r| r.name == "hourly").expect("hourly");
    assert_eq!(
        (hourly.every, hourly.cron.as_deref()),
        (Some(3_600_000), None)
    );

    let run = format!("{}{}", nightly.run_id_stem(), nightly.next);
    assert_eq!(
        q.get_job(&run)
            .await
            .expect("get")
            .expect("pending run")
            .state,
        JobState::Delayed
    );
    assert!(
        q.remove_repeatable_by_key(&nightly.key)
            .await
            .expect("remove")
    );
    assert!(
        q.get_job(&run).await.expect("get").is_none(),
        "pending run removed"
    );
    let left = q.get_repeatable_jobs().await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "hourly");
    assert_eq!(q.get_job_counts().await.expect("counts").delayed, 1);
    assert!(
        !q.remove_repeatable_by_key(&nightly.key)
            .await
            .expect("again")
    );
    q.obliterate().await.expect("clean");
}

/// `job_ids` and `jobs` list each state as the real client's `getRanges([state], start,
/// end)` does (newest first), whole and in part; `jobs` reads each listed job.
#[tokio::test]
async fn job_lists_read_as_bulls_get_ranges() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("job-lists");
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name.clone()))
        .await
        .expect("connect");
    let add = |data: Value, opts: JobOptions| {
        let q = q.clone();
        async move { q.add("__default__", data, opts).await.expect("add") }
    };
    for v in 0..3 {
        add(json!({"action": "return", "value": v}), JobOptions::new()).await;
    }
    for n in 0..2 {
        add(
            json!({"action": "fail", "message": format!("nope {n}")}),
            JobOptions::new(),
        )
        .await;
    }
    for d in [60_000, 120_000, 90_000] {
        add(json!({}), JobOptions::new().delay(d)).await;
    }
    {
        let mut bull = std::process::Command::new("node");
        bull.arg("bull_tool.js")
            .args(["work", "1"])
            .current_dir(interop_dir())
            .env("QUEUE", &name)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let _bull = Proc {
            child: bull.spawn().expect("node"),
            name: "bull worker".into(),
        };
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let c = q.get_job_counts().await.expect("counts");
            if c.completed == 3 && c.failed == 2 {
                break;
            }
            assert!(Instant::now() < end, "bull worker did not finish: {c:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for v in 0..3 {
        add(json!({"waiting": v}), JobOptions::new()).await;
    }
    let states = [
        ("waiting", JobState::Waiting),
        ("delayed", JobState::Delayed),
        ("completed", JobState::Completed),
        ("failed", JobState::Failed),
    ];
    let names = json!(states.iter().map(|(n, _)| *n).collect::<Vec<_>>()).to_string();
    for (start, end) in [(0, -1), (1, 2), (0, 0)] {
        let out = node(
            "bull_tool.js",
            &["list", &names, &start.to_string(), &end.to_string()],
            &name,
            &[],
        );
        assert_success("bull_tool list", &out);
        let bull: HashMap<String, Vec<String>> =
            serde_json::from_slice(&out.stdout).expect("bull's lists");
        for (n, state) in states {
            let ours: Vec<String> = q
                .job_ids(state, start, end)
                .await
                .expect("job_ids")
                .into_iter()
                .map(|id| id.0)
                .collect();
            assert_eq!(ours, bull[n], "{n} {start}..{end}");
            let records = q.jobs(state, start, end).await.expect("jobs");
            assert_eq!(
                records.iter().map(|r| r.id.0.clone()).collect::<Vec<_>>(),
                ours,
                "{n}"
            );
            assert!(records.iter().all(|r| r.state == state), "{n}: {records:?}");
        }
    }
    // Whole lists have every job, newest first.
    let failed = q.jobs(JobState::Failed, 0, -1).await.expect("failed");
    assert_eq!(
        failed
            .iter()
            .map(|r| r.failed_reason.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["nope 1", "nope 0"]
    );
    assert_eq!(
        q.job_ids(JobState::Waiting, 0, -1)
            .await
            .expect("ids")
            .len(),
        3
    );
    assert!(
        q.job_ids(JobState::Unknown, 0, -1)
            .await
            .expect("ids")
            .is_empty()
    );
    q.obliterate().await.expect("clean");
}
