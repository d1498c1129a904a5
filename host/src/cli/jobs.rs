//! `drowl-host jobs`: queue counts, or one job's state, read from Redis.

use clap::Args;

use super::exit;
use super::queue_args::QueueArgs;

/// Arguments of `jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// A job id: print that job's state, data, result or failure. Without it, print the
    /// queue's counts.
    pub id: Option<String>,
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// Runs the command.
pub async fn run(args: JobsArgs) -> u8 {
    let queue = match args.queue.connect().await {
        Ok(q) => q,
        Err(code) => return code,
    };
    let printed = match args.id {
        None => queue.get_job_counts().await.map(|c| {
            let paused = c.paused;
            serde_json::json!({ "queue": args.queue.queue, "counts": c, "isPaused": paused > 0 })
        }),
        Some(id) => match queue.get_job(&id).await {
            Ok(Some(record)) => Ok(serde_json::to_value(&record).unwrap_or_default()),
            Ok(None) => {
                eprintln!("error: no job {id} in queue {}", args.queue.queue);
                return exit::USAGE;
            }
            Err(e) => Err(e),
        },
    };
    match printed {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}
