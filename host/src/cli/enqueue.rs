//! `drowl-host enqueue`: add a job exactly as drowl's API does (Bull's `queue.add`).

use std::io::Read;

use clap::Args;
use drowl_bull::JobOptions;

use super::exit;
use super::queue_args::QueueArgs;
use crate::jobs::JobRequest;

/// Arguments of `enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job in drowl's format `{"type", "name", "input"}`: a file, or `-` for stdin.
    #[arg(long, value_name = "FILE|-")]
    pub job: String,
    /// Bull job options as JSON, as the API passes them to `queue.add`, e.g.
    /// `{"attempts":3,"backoff":{"type":"exponential","delay":1000},"repeat":{"cron":"0 3 * * *"}}`.
    #[arg(long, value_name = "JSON")]
    pub opts: Option<String>,
    /// Custom job id (a second add with the same id is ignored, as in Bull).
    #[arg(long)]
    pub job_id: Option<String>,
    /// Delay before the job may run, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub delay: Option<u64>,
    /// Attempts before the job fails for good.
    #[arg(long)]
    pub attempts: Option<u32>,
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// Runs the command; prints the job id as JSON.
pub async fn run(args: EnqueueArgs) -> u8 {
    let text = if args.job == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("error: cannot read the job from stdin: {e}");
            return exit::USAGE;
        }
        s
    } else {
        match std::fs::read_to_string(&args.job) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot read job file {}: {e}", args.job);
                return exit::USAGE;
            }
        }
    };
    // Refuse malformed jobs here rather than let a worker fail them later.
    let job = match JobRequest::from_json("new", &text) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {}: {e}", args.job);
            return exit::USAGE;
        }
    };
    let mut opts: JobOptions = match args.opts.as_deref().map(serde_json::from_str).transpose() {
        Ok(o) => o.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: --opts is not valid Bull job options: {e}");
            return exit::USAGE;
        }
    };
    if let Some(id) = args.job_id {
        opts = opts.job_id(id);
    }
    if let Some(d) = args.delay {
        opts = opts.delay(d);
    }
    if let Some(a) = args.attempts {
        opts = opts.attempts(a);
    }
    let data =
        serde_json::json!({ "type": job.job_type.as_str(), "name": job.name, "input": job.input });
    let queue = match args.queue.connect().await {
        Ok(q) => q,
        Err(code) => return code,
    };
    match queue.add(&job.name, data, opts).await {
        Ok(id) => {
            println!(
                "{}",
                serde_json::json!({ "id": id.as_str(), "queue": args.queue.queue })
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: cannot enqueue: {e}");
            exit::USAGE
        }
    }
}
