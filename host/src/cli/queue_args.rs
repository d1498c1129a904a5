//! Settings for reaching drowl's queue, shared by `serve`, `enqueue` and `jobs`.

use clap::Args;
use drowl_bull::QueueConfig;

/// Which Bull queue to use.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Redis URL (drowl's `REDIS_URL`).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Queue name.
    #[arg(long, env = "DROWL_QUEUE", default_value = "drowl")]
    pub queue: String,
    /// Bull key prefix.
    #[arg(long, env = "DROWL_QUEUE_PREFIX", default_value = "bull")]
    pub prefix: String,
}

impl QueueArgs {
    /// The queue configuration these flags describe (Bull's defaults otherwise).
    pub fn config(&self) -> QueueConfig {
        QueueConfig::new(self.redis_url.clone())
            .queue_name(self.queue.clone())
            .prefix(self.prefix.clone())
    }

    /// Connects a producer to the queue, for one-shot commands: on failure, prints the
    /// one-line error (without the password) and returns the exit code.
    pub async fn connect(&self) -> Result<drowl_bull::Queue, u8> {
        drowl_bull::Queue::connect(&self.config())
            .await
            .map_err(|e| {
                eprintln!(
                    "error: cannot reach the queue at {}: {e}",
                    self.redacted_url()
                );
                super::exit::USAGE
            })
    }

    /// The Redis URL for messages and logs: `REDIS_URL` often carries the password
    /// (`redis://:secret@host:6379`), which must not end up in a log line.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.redis_url)
    }
}

fn redact_url(url: &str) -> String {
    crate::config::redact_url(url, "(unparseable REDIS_URL)")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_url("redis://:s3cret@cache.internal:6380/2"),
            "redis://:***@cache.internal:6380/2"
        );
        assert_eq!(
            redact_url("rediss://worker:s3cret@cache.internal"),
            "rediss://worker:***@cache.internal"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(!redact_url("redis//:s3cret@x").contains("s3cret"));
    }
}
