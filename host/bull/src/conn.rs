//! Redis connections: one command client, one blocking client, one subscriber, all with a
//! reconnect policy so a restarted Redis is picked up again without spinning hot.

use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{Builder, Client, ClientLike, Config, ReconnectPolicy};
use fred::types::ClusterHash;
use fred::types::CustomCommand;

use crate::config::QueueConfig;
use crate::error::QueueError;

/// Reconnect after 100 ms, doubling up to 5 s, forever.
fn policy() -> ReconnectPolicy {
    ReconnectPolicy::new_exponential(0, 100, 5_000, 2)
}

fn builder(config: &QueueConfig, command_timeout: Duration) -> Result<Builder, QueueError> {
    let mut redis = Config::from_url(&config.redis_url)?;
    // Keep retrying the first connection too: a worker started before Redis must wait for it.
    redis.fail_fast = false;
    let mut b = Builder::from_config(redis);
    b.set_policy(policy());
    b.with_connection_config(|c| {
        c.connection_timeout = Duration::from_secs(5);
        c.internal_command_timeout = Duration::from_secs(5);
        c.tcp.nodelay = Some(true);
        // Never let the client silently re-send a command whose reply was lost in a
        // disconnect: a re-sent finish script would report "lock missing" for a job it had
        // in fact completed. The worker's own retry loops know the first try may have
        // applied and check.
        c.max_command_attempts = 1;
    });
    b.with_performance_config(|p| {
        p.default_command_timeout = command_timeout;
        p.broadcast_channel_capacity = 1024;
    });
    Ok(b)
}

/// The client for scripts and ordinary commands.
pub(crate) async fn command_client(config: &QueueConfig) -> Result<Client, QueueError> {
    let client = builder(config, config.command_timeout)?.build()?;
    client.init().await?;
    Ok(client)
}

/// A dedicated connection for BRPOPLPUSH (a blocked connection cannot serve anything else).
/// Its command timeout leaves room for the drain delay.
pub(crate) async fn blocking_client(config: &QueueConfig) -> Result<Client, QueueError> {
    let client = builder(config, config.drain_delay + Duration::from_secs(5))?.build()?;
    client.init().await?;
    Ok(client)
}

/// The pub/sub connection (for `P:delayed`), resubscribing after reconnects.
pub(crate) async fn subscriber(config: &QueueConfig) -> Result<SubscriberClient, QueueError> {
    let client = builder(config, config.command_timeout)?.build_subscriber_client()?;
    client.init().await?;
    let _resubscribe = client.manage_subscriptions();
    Ok(client)
}

/// A custom command by name (for CONFIG, CLIENT …, which the enabled fred features lack).
pub(crate) fn cmd(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::Random, false)
}

/// Warn when Redis may evict queue keys: Bull needs `maxmemory-policy noeviction`, or locks
/// and job hashes can silently disappear under memory pressure.
pub(crate) async fn check_eviction_policy(client: &Client) {
    let reply: Result<Vec<String>, _> = client
        .custom(cmd("CONFIG"), vec!["GET", "maxmemory-policy"])
        .await;
    match reply {
        Ok(v) => match v.get(1) {
            Some(p) if p == "noeviction" => {}
            Some(p) => tracing::warn!(
                policy = %p,
                "redis maxmemory-policy is not noeviction: job keys and locks may be evicted"
            ),
            None => tracing::warn!("could not read redis maxmemory-policy"),
        },
        Err(e) => tracing::warn!(error = %e, "could not read redis maxmemory-policy"),
    }
}
