//! Fault tests with real worker processes: SIGKILL of one of three workers during 1,000
//! jobs, and SIGTERM with jobs in flight. Short lock durations and stalled intervals keep
//! recovery fast. Every test holds `RedisInUse`, so a test restarting the machine's Redis
//! (in any `cargo test` on the machine) waits for it.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use drowl_bull::{JobOptions, Queue, QueueConfig};
use fred::prelude::ListInterface;
use serde_json::json;
use support::*;

async fn list(q: &Queue, key: &str) -> Vec<String> {
    q.client().lrange(key, 0, -1).await.expect("lrange")
}

async fn wait_completed(q: &Queue, n: u64, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let c = q.get_job_counts().await.expect("counts");
        if c.completed >= n {
            return;
        }
        assert!(Instant::now() < end, "only {c:?} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_one_of_three_workers_every_job_completes_exactly_once() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("sigkill");
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name.clone()))
        .await
        .expect("connect");
    let env = [
        ("CONCURRENCY", "4"),
        ("LOCK_MS", "1000"),
        ("STALLED_MS", "500"),
        ("GUARD_MS", "500"),
        ("DRAIN_MS", "500"),
    ];
    let mut workers: Vec<Proc> = (0..3).map(|_| spawn_worker(&name, &env)).collect();
    let mut ids = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let id = q
            .add(
                "__default__",
                json!({"action": "record", "ms": 15}),
                JobOptions::new(),
            )
            .await
            .expect("add");
        ids.push(id.to_string());
    }
    wait_completed(&q, 300, Duration::from_secs(60)).await;
    let victim = workers.remove(0);
    victim.signal("KILL");
    let t_kill = Instant::now();
    drop(victim);
    wait_completed(&q, 1000, Duration::from_secs(90)).await;
    let recovery = t_kill.elapsed();

    let counts = q.get_job_counts().await.expect("counts");
    assert_eq!(
        (
            counts.completed,
            counts.failed,
            counts.active,
            counts.waiting,
            counts.delayed
        ),
        (1000, 0, 0, 0, 0),
        "{counts:?}"
    );
    for id in &ids {
        let job = q.get_job(id).await.expect("get").expect("job");
        assert_eq!(job.state, drowl_bull::JobState::Completed, "job {id}");
    }
    // Completions reported by the workers: never twice for a job.
    let reported = list(&q, &format!("test:{name}:completed")).await;
    let mut seen = HashSet::new();
    for id in &reported {
        assert!(seen.insert(id.clone()), "job {id} reported completed twice");
    }
    // The killed worker may have completed a job in Redis and died before reporting it.
    assert!(
        reported.len() >= 1000 - 4,
        "only {} reported",
        reported.len()
    );
    // Runs: every job ran; reruns are only the killed worker's in-flight jobs, recovered
    // through the stalled check.
    let runs = list(&q, &format!("test:{name}:runs")).await;
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for r in &runs {
        *per_job.entry(r.as_str()).or_default() += 1;
    }
    assert!(ids.iter().all(|id| per_job.contains_key(id.as_str())));
    let rerun: Vec<&str> = per_job
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    let events = list(&q, &format!("test:{name}:events")).await;
    let stalled: HashSet<String> = events
        .iter()
        .filter_map(|e| e.strip_prefix("stalled "))
        .map(|e| e.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert!(
        !stalled.is_empty(),
        "the killed worker's in-flight jobs were recovered by the stalled check"
    );
    assert!(
        rerun.len() <= 4,
        "reruns beyond the killed worker's slots: {rerun:?}"
    );
    for id in &rerun {
        assert!(
            stalled.contains(*id),
            "rerun of {id} without a stalled recovery"
        );
    }
    eprintln!(
        "sigkill: recovered {} stalled jobs, {} reruns, all 1000 completed {:?} after the kill",
        stalled.len(),
        rerun.len(),
        recovery
    );
    drop(workers);
    q.obliterate().await.expect("clean");
    let _: i64 = fred::prelude::KeysInterface::del(
        q.client(),
        vec![
            format!("test:{name}:completed"),
            format!("test:{name}:runs"),
            format!("test:{name}:events"),
        ],
    )
    .await
    .expect("del");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_short_jobs_and_releases_the_rest_for_another_worker() {
    let _redis = RedisInUse::acquire();
    let name = unique_queue("sigterm");
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(name.clone()))
        .await
        .expect("connect");
    // A long stalled interval: released jobs must not need the stalled check.
    let env = [
        ("CONCURRENCY", "4"),
        ("GRACE_MS", "500"),
        ("STALLED_MS", "60000"),
        ("DRAIN_MS", "500"),
    ];
    let mut first = spawn_worker(&name, &env);
    let mut short = Vec::new();
    let mut long = Vec::new();
    for i in 0..5 {
        let ms = if i < 2 { 200 } else { 1500 };
        let id = q
            .add(
                "__default__",
                json!({"action": "sleep", "ms": ms, "value": ms}),
                JobOptions::new(),
            )
            .await
            .expect("add");
        if i < 2 { short.push(id) } else { long.push(id) }
    }
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let c = q.get_job_counts().await.expect("counts");
        if c.active == 4 {
            break;
        }
        assert!(Instant::now() < end, "4 jobs not active: {c:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t0 = Instant::now();
    first.signal("TERM");
    let status = first
        .wait_for(Duration::from_secs(10))
        .expect("worker exits after SIGTERM");
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_millis(500 + 1500),
        "shutdown took {took:?}"
    );
    let events = list(&q, &format!("test:{name}:events")).await;
    for id in &short {
        assert!(events.contains(&format!("completed {id}")), "{events:?}");
    }
    let released: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("released "))
        .collect();
    assert_eq!(
        released.len(),
        2,
        "the two running long jobs are released: {events:?}"
    );
    let c = q.get_job_counts().await.expect("counts");
    assert_eq!((c.active, c.completed, c.waiting), (0, 2, 3), "{c:?}");

    // Another worker takes the released jobs at once.
    let t1 = Instant::now();
    let _second = spawn_worker(&name, &env);
    wait_completed(&q, 5, Duration::from_secs(10)).await;
    let took = t1.elapsed();
    assert!(
        took < Duration::from_millis(1500 * 2 + 2000),
        "released jobs waited for recovery: {took:?}"
    );
    for id in &long {
        let job = q.get_job(id.as_str()).await.expect("get").expect("job");
        assert_eq!(job.returnvalue, Some(json!(1500)));
        assert_eq!(job.attempts_made, 0);
    }
    q.obliterate().await.expect("clean");
    let _: i64 = fred::prelude::KeysInterface::del(
        q.client(),
        vec![
            format!("test:{name}:events"),
            format!("test:{name}:completed"),
        ],
    )
    .await
    .expect("del");
}
