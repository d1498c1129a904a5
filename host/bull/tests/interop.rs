//! Interop: the REAL bull npm client (tests/interop/scenarios.js) adds jobs and checks what
//! it sees, while a drowl-bull worker process (the `noop_worker` example) is the only
//! worker on the queue. Every scenario holds `RedisInUse`, so a test restarting the
//! machine's Redis (in any `cargo test` on the machine) waits for it.

mod support;

use drowl_bull::{Queue, QueueConfig};
use support::*;

async fn scenario(name: &str, worker_env: &[(&str, &str)]) {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue(name);
    let _worker = spawn_worker(
        &queue,
        &[&[("GUARD_MS", "1000"), ("DRAIN_MS", "1000")], worker_env].concat(),
    );
    let out = node("scenarios.js", &[name], &queue, &[]);
    assert_success(&format!("scenario {name}"), &out);
    drop(_worker);
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    q.obliterate().await.expect("obliterate");
}

#[tokio::test]
async fn complete_with_return_value() {
    scenario("complete", &[]).await;
}

#[tokio::test]
async fn retries_with_fixed_backoff() {
    scenario("retries_fixed", &[]).await;
}

#[tokio::test]
async fn retries_with_exponential_and_linear_backoff() {
    scenario("retries_exponential", &[]).await;
}

#[tokio::test]
async fn permanent_and_retry_after_failures() {
    scenario("failure_overrides", &[]).await;
}

#[tokio::test]
async fn delayed_job() {
    scenario("delay", &[]).await;
}

#[tokio::test]
async fn priority_order() {
    scenario("priority", &[]).await;
}

#[tokio::test]
async fn custom_job_id_dedupe() {
    scenario("dedupe", &[]).await;
}

#[tokio::test]
async fn timeout_fails_attempt() {
    scenario("timeout", &[]).await;
}

#[tokio::test]
async fn remove_on_complete_still_resolves() {
    scenario("remove_on_complete", &[]).await;
}

#[tokio::test]
async fn repeat_every() {
    scenario("repeat_every", &[]).await;
}

#[tokio::test]
async fn repeat_cron() {
    scenario("repeat_cron", &[]).await;
}

#[tokio::test]
async fn pause_and_resume() {
    scenario("pause_resume", &[]).await;
}

#[tokio::test]
async fn progress_and_logs() {
    scenario("progress_logs", &[]).await;
}

#[tokio::test]
async fn many_jobs_with_concurrency() {
    scenario("many", &[("CONCURRENCY", "8")]).await;
}
