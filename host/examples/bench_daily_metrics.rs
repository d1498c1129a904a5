//! `analytics` `daily-metrics` over one million events in PostgreSQL.
//!
//! Not a test: it prints how long recomputing a month of rollups takes, so the set-based
//! SQL can be judged at the size drowl's installations reach (the README quotes it).
//!
//! ```text
//! cargo run -p drowl-host --example bench_daily_metrics -- [events] [runs]
//! ```
//!
//! Defaults: 1,000,000 events over the 31 days of January 2024 from 50,000 accounts
//! (40,000 with an identity; 10,000 people of two accounts and 2,000 of three, linked),
//! keyword matches on a fifth of the events (50 keywords); 3 runs. The fixture is
//! generated inside PostgreSQL (`generate_series`), not sent row by row. PostgreSQL:
//! `DROWL_TEST_PG_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); a
//! `drowl_test_<random>` database is created and dropped. The time is PostgreSQL's (one
//! call, four statements), so the build profile hardly matters.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use drowl_host::storage::postgres::PostgresStore;
use drowl_host::storage::{DayRange, EventStore};

/// The fixture, in set-based SQL: `$1` events.
const FIXTURE: [&str; 5] = [
    // 50,000 accounts act; 40,000 of them have an identity, discovered over January.
    "INSERT INTO identities (id, platform, platform_user_id, discovered_at)
     SELECT 'id-' || lpad(g::text, 6, '0'), 'github', 'user' || g,
            timestamptz '2024-01-01 00:00:00+00' + (g % 31) * interval '1 day'
                                                 + (g % 86400) * interval '1 second'
       FROM generate_series(1, 40000) g",
    // People of several accounts: 10,000 pairs (user 2k-1 with 2k), 2,000 of them with a
    // third account (2k with 20000+k).
    "INSERT INTO identity_links (identity_id_1, identity_id_2, confidence, link_source,
                                 confidence_score)
     SELECT 'id-' || lpad((2 * g - 1)::text, 6, '0'), 'id-' || lpad((2 * g)::text, 6, '0'),
            'high', 'plugin_heuristic', 0.8
       FROM generate_series(1, 10000) g
     UNION ALL
     SELECT 'id-' || lpad((2 * g)::text, 6, '0'), 'id-' || lpad((20000 + g)::text, 6, '0'),
            'medium', 'plugin_heuristic', 0.6
       FROM generate_series(1, 2000) g",
    // $1 events over January, 4 sources and 3 types each, 50,000 actors, one in 100
    // without an actor.
    "INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload,
                         plugin_id, plugin_version, actor_platform, actor_platform_user_id)
     SELECT 'ev-' || lpad(g::text, 9, '0'),
            (ARRAY['github', 'x', 'zenn', 'qiita'])[(1 + g % 4)::int],
            'ext-' || g,
            (ARRAY['star', 'comment', 'fork'])[(1 + (g / 4) % 3)::int],
            timestamptz '2024-01-01 00:00:00+00'
                + ((g::bigint * 2678400) / $1) * interval '1 second',
            jsonb_build_object('n', g),
            'bench', '1.0.0',
            CASE WHEN g % 100 = 0 THEN NULL ELSE 'github' END,
            CASE WHEN g % 100 = 0 THEN NULL ELSE 'user' || (1 + (g * 7919) % 50000) END
       FROM generate_series(1, $1) g",
    // A fifth of the events mention one of 50 keywords.
    "INSERT INTO keyword_matches (event_id, keyword_id, matched_text, position, occurrences,
                                  plugin_id)
     SELECT id, 'kw-' || (abs(hashtext(id)) % 50), 'term', 0, 1 + abs(hashtext(id)) % 3,
            'keywords'
       FROM events WHERE abs(hashtext(id)) % 5 = 0",
    "ANALYZE",
];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let events = args.first().copied().unwrap_or(1_000_000).max(1);
    let runs = args.get(1).copied().unwrap_or(3).max(1);
    // A database of its own, dropped afterwards (the test suite's helper).
    let db = drowl_testkit::storage::TestDb::create().await;
    bench(&db.url, events, runs).await
}

async fn bench(url: &str, events: i64, runs: i64) -> Result<()> {
    let store = PostgresStore::connect(url).await?;
    store.migrate().await?;
    let started = Instant::now();
    for sql in FIXTURE {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") {
            q.bind(events)
        } else {
            q
        };
        q.execute(store.pool())
            .await
            .with_context(|| sql.to_owned())?;
    }
    let matches: i64 = sqlx::query_scalar("SELECT count(*) FROM keyword_matches")
        .fetch_one(store.pool())
        .await?;
    eprintln!(
        "fixture: {events} events, {matches} keyword matches, 40,000 identities, 12,000 links \
         in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let range = DayRange {
        first: "2024-01-01".parse()?,
        last: "2024-01-31".parse()?,
        utc_offset_seconds: 0,
    };
    let mut times: Vec<Duration> = Vec::new();
    let mut written = None;
    for _ in 0..runs {
        let t = Instant::now();
        written = Some(store.compute_daily_metrics(&range).await?);
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "daily-metrics 2024-01-01..2024-01-31 over {events} events (PostgreSQL): median {:.2} s, \
         best {:.2} s of {runs} runs ({:.0} events/s); rows written {:?}",
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        events as f64 / median.as_secs_f64(),
        written.unwrap_or_default()
    );
    Ok(())
}
