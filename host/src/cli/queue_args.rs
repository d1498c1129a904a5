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
}
