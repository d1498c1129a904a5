//! The Lua scripts that move jobs between Bull's lists and sets, written from the protocol
//! description (Bull 4.12.9+ semantics), and a small runner that loads them by SHA.
//!
//! Each script lives in its own `.lua` file beside this module (`prelude.lua` holds the
//! helpers every script shares and is prepended to each one), so the Lua can be read and
//! diffed as Lua. What a script is sent is built in one place: the typed call in [`calls`]
//! that names every argument, so no call site counts ARGV positions.
//!
//! Every script takes no KEYS and receives the `<prefix>:<queue>:` string as `ARGV[1]`; key
//! names are built inside, as Bull's own scripts do (Redis Cluster needs a hash-tag prefix).

pub(crate) mod calls;

use std::sync::Arc;

use fred::prelude::{Client, LuaInterface};
use fred::types::Value;
use tokio::sync::RwLock;

use crate::error::QueueError;

/// Helpers shared by the scripts; prepended to every script's body.
const PRELUDE: &str = include_str!("prelude.lua");

/// What one EVALSHA sends: the KEYS and ARGV lists, in the order the script reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// KEYS (empty for every script here: see the module doc).
    pub(crate) keys: Vec<String>,
    /// ARGV.
    pub(crate) argv: Vec<String>,
}

/// A typed call of one script: its arguments as named fields, and the one method that lays
/// them out as KEYS/ARGV.
///
/// Why a trait: [`Scripts::run`] picks the script from the call's type, so a call cannot be
/// sent to the wrong script and its arguments cannot be reordered at a call site.
pub(crate) trait ScriptCall {
    /// The script this call runs.
    fn script(scripts: &Scripts) -> &Script;
    /// KEYS and ARGV in the script's order.
    fn invocation(&self) -> Invocation;
}

/// One script: its source (prelude included) and its SHA once loaded.
#[derive(Debug)]
pub(crate) struct Script {
    name: &'static str,
    body: &'static str,
    sha: RwLock<Option<String>>,
}

impl Script {
    const fn new(name: &'static str, body: &'static str) -> Self {
        Self {
            name,
            body,
            sha: RwLock::const_new(None),
        }
    }

    fn source(&self) -> String {
        format!("{PRELUDE}\n{}", self.body)
    }

    /// EVALSHA, loading the script first if needed and again after `NOSCRIPT` (a restarted
    /// Redis has forgotten it).
    async fn run(&self, client: &Client, call: Invocation) -> Result<Value, QueueError> {
        for _ in 0..2 {
            let sha = self.sha(client).await?;
            match client
                .evalsha::<Value, _, _, _>(sha.as_str(), call.keys.clone(), call.argv.clone())
                .await
            {
                Ok(v) => return Ok(v),
                Err(e) if e.details().contains("NOSCRIPT") => {
                    *self.sha.write().await = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(QueueError::Protocol(format!(
            "script {} could not be loaded",
            self.name
        )))
    }

    async fn sha(&self, client: &Client) -> Result<String, QueueError> {
        if let Some(sha) = self.sha.read().await.as_ref() {
            return Ok(sha.clone());
        }
        let sha: String = client.script_load(self.source()).await?;
        *self.sha.write().await = Some(sha.clone());
        Ok(sha)
    }
}

/// All scripts, shared by a queue handle and its worker.
#[derive(Debug)]
pub(crate) struct Scripts {
    add_job: Script,
    move_to_active: Script,
    extend_locks: Script,
    move_to_finished: Script,
    retry: Script,
    release: Script,
    postpone: Script,
    requeue_unlocked: Script,
    update_delay_set: Script,
    move_stalled_jobs_to_wait: Script,
    pause: Script,
    update_progress: Script,
    add_log: Script,
    get_job_counts: Script,
    get_job: Script,
    remove_repeatable: Script,
    run_now: Script,
}

impl Scripts {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            add_job: Script::new("addJob", include_str!("add_job.lua")),
            move_to_active: Script::new("moveToActive", include_str!("move_to_active.lua")),
            extend_locks: Script::new("extendLocks", include_str!("extend_locks.lua")),
            move_to_finished: Script::new("moveToFinished", include_str!("move_to_finished.lua")),
            retry: Script::new("retry", include_str!("retry.lua")),
            release: Script::new("release", include_str!("release.lua")),
            postpone: Script::new("postpone", include_str!("postpone.lua")),
            requeue_unlocked: Script::new("requeueUnlocked", include_str!("requeue_unlocked.lua")),
            update_delay_set: Script::new("updateDelaySet", include_str!("update_delay_set.lua")),
            move_stalled_jobs_to_wait: Script::new(
                "moveStalledJobsToWait",
                include_str!("move_stalled_jobs_to_wait.lua"),
            ),
            pause: Script::new("pause", include_str!("pause.lua")),
            update_progress: Script::new("updateProgress", include_str!("update_progress.lua")),
            add_log: Script::new("addLog", include_str!("add_log.lua")),
            get_job_counts: Script::new("getJobCounts", include_str!("get_job_counts.lua")),
            get_job: Script::new("getJob", include_str!("get_job.lua")),
            remove_repeatable: Script::new(
                "removeRepeatable",
                include_str!("remove_repeatable.lua"),
            ),
            run_now: Script::new("runNow", include_str!("run_now.lua")),
        })
    }

    /// Run `call` on the script its type names (EVALSHA, loading as needed).
    pub(crate) async fn run<C: ScriptCall>(
        &self,
        client: &Client,
        call: &C,
    ) -> Result<Value, QueueError> {
        C::script(self).run(client, call.invocation()).await
    }
}
