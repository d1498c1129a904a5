//! `drowl:plugin/queue` served from a [`QueueCtx`].

use super::{FollowUp, JOB_TYPES, MAX_INPUT_BYTES, PLUGIN_JOB_TYPES, QueueCtx, wit};

impl QueueCtx {
    /// Refuses a follow-up addressed to another plugin (or to the host) that the operator
    /// did not grant. A plugin job that names no plugin is addressed to the job type's
    /// default plugin, or else to the enqueuing plugin, whose id is then written into
    /// the input so the job runs where the check said it would.
    fn check_addressee(
        &self,
        job_type: &str,
        input: &mut serde_json::Value,
    ) -> Result<(), wit::QueueError> {
        let own = &*self.tag.plugin;
        let addressee = match PLUGIN_JOB_TYPES.iter().find(|(t, _)| *t == job_type) {
            Some((_, default)) => match input.get("pluginId") {
                Some(serde_json::Value::String(id)) => {
                    // drowl's API writes ids like `github-plugin`; the executor accepts both.
                    id.strip_suffix("-plugin").unwrap_or(id).to_owned()
                }
                Some(_) => {
                    return Err(wit::QueueError::Invalid(
                        "input.pluginId must be a string".into(),
                    ));
                }
                None => match default {
                    Some(d) => (*d).to_owned(),
                    None => {
                        input["pluginId"] = serde_json::Value::String(own.to_owned());
                        own.to_owned()
                    }
                },
            },
            None => "host".to_owned(),
        };
        if addressee == own
            || self
                .scope
                .grants
                .iter()
                .any(|g| g.allows(job_type, &addressee))
        {
            return Ok(());
        }
        Err(wit::QueueError::Invalid(format!(
            "a {job_type} job for `{addressee}` is not granted to plugin `{own}`: a plugin may enqueue only its own jobs unless the operator grants more (--allow-follow-up {job_type}:{addressee}, or `followUps` in plugins.json)"
        )))
    }
}

impl wit::Host for QueueCtx {
    #[tracing::instrument(name = "drowl.queue.enqueue", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn enqueue(
        &mut self,
        job: wit::NewJob,
    ) -> wasmtime::Result<Result<String, wit::QueueError>> {
        if self.follow_ups.len() >= self.max_follow_ups as usize {
            return Ok(Err(wit::QueueError::LimitReached(self.max_follow_ups)));
        }
        if self.scope.depth >= self.scope.max_depth {
            // Nesting is what turns a few follow-ups per job into exponential growth.
            return Ok(Err(wit::QueueError::LimitReached(self.scope.max_depth)));
        }
        if !JOB_TYPES.contains(&job.job_type.as_str()) {
            return Ok(Err(wit::QueueError::Invalid(format!(
                "unknown job type {:?}; use one of {}",
                job.job_type,
                JOB_TYPES.join(", ")
            ))));
        }
        if job.name.is_empty() || job.name.len() > 200 {
            return Ok(Err(wit::QueueError::Invalid(
                "name must be 1 to 200 bytes".into(),
            )));
        }
        if job.input.len() > MAX_INPUT_BYTES {
            return Ok(Err(wit::QueueError::Invalid(format!(
                "input over {MAX_INPUT_BYTES} bytes"
            ))));
        }
        let mut input = match serde_json::from_str::<serde_json::Value>(&job.input) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                return Ok(Err(wit::QueueError::Invalid(
                    "input must be a JSON object".into(),
                )));
            }
        };
        // PostgreSQL stores neither NUL in text nor `\u0000` in jsonb: such a follow-up
        // would fail in the `jobs` table, not here where the plugin can see why.
        if job.name.contains('\0') || json_strings(&input).any(|s| s.contains('\0')) {
            return Ok(Err(wit::QueueError::Invalid(
                "name and input must not contain NUL characters".into(),
            )));
        }
        // The input is checked as stored (JSON escapes can spell a secret out) and string
        // by string as the next job will read it.
        if self.secrets.contains_secret(&job.name)
            || self.secrets.contains_secret(&input.to_string())
            || json_strings(&input).any(|s| self.secrets.contains_secret(s))
        {
            return Ok(Err(wit::QueueError::Invalid(
                "the name or input holds one of this plugin's secrets (or an encoding of one); follow-up jobs are stored in the queue and the jobs table, so pass a config key instead of its value".into(),
            )));
        }
        if let Err(e) = self.check_addressee(&job.job_type, &mut input) {
            return Ok(Err(e));
        }
        if job.priority.is_some_and(|p| p > 10) {
            return Ok(Err(wit::QueueError::Invalid(
                "priority must be 0 to 10".into(),
            )));
        }
        let id = format!("{}-followup-{}", self.tag.job, self.follow_ups.len() + 1);
        self.follow_ups.push(FollowUp {
            job_type: job.job_type,
            name: job.name,
            input,
            delay_ms: job.delay_ms,
            priority: job.priority,
        });
        Ok(Ok(id))
    }

    #[tracing::instrument(name = "drowl.queue.progress", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn progress(&mut self, percent: u8) -> wasmtime::Result<()> {
        let p = percent.min(100);
        if self.last_progress != Some(p) {
            self.last_progress = Some(p);
            if let Some(sink) = &self.progress {
                sink(p);
            }
        }
        Ok(())
    }
}

/// Every string of a JSON value, object keys included.
fn json_strings(v: &serde_json::Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match v {
        serde_json::Value::String(s) => Box::new(std::iter::once(s.as_str())),
        serde_json::Value::Array(a) => Box::new(a.iter().flat_map(json_strings)),
        serde_json::Value::Object(o) => Box::new(
            o.iter()
                .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(json_strings(v))),
        ),
        _ => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    //! The `queue` host functions called directly on a [`QueueCtx`]: no engine, no store.

    use std::sync::{Arc, Mutex};

    use super::super::FollowUpScope;
    use super::wit::{Host as _, NewJob, QueueError};
    use super::*;
    use crate::capabilities::CallTag;

    fn scope(depth: u32) -> FollowUpScope {
        FollowUpScope {
            depth,
            max_depth: 3,
            grants: Arc::from(vec!["keyword_extraction:keywords".parse().unwrap()]),
        }
    }

    fn job(job_type: &str, input: &str) -> NewJob {
        NewJob {
            job_type: job_type.into(),
            name: "next".into(),
            input: input.into(),
            delay_ms: None,
            priority: None,
        }
    }

    #[tokio::test]
    async fn follow_ups_are_checked_counted_and_named_after_the_job() {
        let mut q = QueueCtx::new(CallTag::new("github", "42"), 1, scope(0), None);
        let id = q
            .enqueue(job("event_ingestion", "{}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, "42-followup-1");
        let over = q.enqueue(job("event_ingestion", "{}")).await.unwrap();
        assert!(matches!(over, Err(QueueError::LimitReached(1))), "{over:?}");
        assert_eq!(q.follow_ups().len(), 1);

        let mut q = QueueCtx::new(CallTag::new("github", "42"), 5, scope(0), None);
        let bad_type = q.enqueue(job("rm-rf", "{}")).await.unwrap();
        assert!(
            matches!(bad_type, Err(QueueError::Invalid(_))),
            "{bad_type:?}"
        );
        let not_object = q.enqueue(job("custom", "[1]")).await.unwrap();
        assert!(
            matches!(not_object, Err(QueueError::Invalid(_))),
            "{not_object:?}"
        );
        assert!(q.follow_ups().is_empty());
    }

    #[tokio::test]
    async fn follow_ups_carrying_a_secret_or_nul_are_refused() {
        let secret = "ghp_s3cretT0ken";
        let redactor = Arc::new(crate::redact::Redactor::new([secret]));
        let mut q =
            QueueCtx::new(CallTag::new("github", "42"), 10, scope(0), None).with_secrets(redactor);
        let hexed = hex::encode(secret);
        // `\u0067` is `g`: the stored text hides the secret, the value holds it.
        let escaped = format!(r#"{{"t":"\u0067{}"}}"#, &secret[1..]);
        for (name, input) in [
            (format!("sync-{secret}"), "{}".to_owned()),
            ("next".to_owned(), format!(r#"{{"token":"{secret}"}}"#)),
            ("next".to_owned(), format!(r#"{{"{hexed}":1}}"#)),
            ("next".to_owned(), escaped),
        ] {
            let mut j = job("event_ingestion", &input);
            j.name = name.clone();
            let refused = q.enqueue(j).await.unwrap();
            let Err(QueueError::Invalid(message)) = refused else {
                panic!("{name} {input}: {refused:?}");
            };
            assert!(message.contains("secrets"), "{message}");
            assert!(!message.contains(secret), "{message}");
        }
        for (name, input) in [("a\0b", "{}"), ("next", r#"{"a":"b\u0000"}"#)] {
            let mut j = job("event_ingestion", input);
            j.name = name.into();
            let refused = q.enqueue(j).await.unwrap();
            assert!(
                matches!(&refused, Err(QueueError::Invalid(m)) if m.contains("NUL")),
                "{refused:?}"
            );
        }
        assert!(q.follow_ups().is_empty());
        q.enqueue(job("event_ingestion", r#"{"page":2}"#))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(q.follow_ups().len(), 1);
    }

    #[tokio::test]
    async fn progress_is_clamped_and_repeated_values_are_not_forwarded() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let mut q = QueueCtx::new(
            CallTag::new("github", "42"),
            0,
            scope(0),
            Some(Arc::new(move |p| sink.lock().unwrap().push(p))),
        );
        for p in [10, 10, 250, 100] {
            q.progress(p).await.unwrap();
        }
        assert_eq!(*seen.lock().unwrap(), vec![10, 100]);
    }

    #[tokio::test]
    async fn a_plugin_enqueues_only_its_own_jobs_unless_granted() {
        let mut q = QueueCtx::new(CallTag::new("github", "42"), 10, scope(0), None);
        // Its own ingestion job, named or not: allowed; an unnamed one is pinned to it.
        q.enqueue(job("event_ingestion", r#"{"pluginId":"github-plugin"}"#))
            .await
            .unwrap()
            .unwrap();
        q.enqueue(job("event_ingestion", "{}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(q.follow_ups()[1].input["pluginId"], "github");
        // Granted: keyword extraction by the keywords plugin (its default).
        q.enqueue(job("keyword_extraction", "{}"))
            .await
            .unwrap()
            .unwrap();
        // Not granted: another plugin's ingestion, or a host job.
        for (ty, input) in [
            ("event_ingestion", r#"{"pluginId":"feed"}"#),
            ("keyword_extraction", r#"{"pluginId":"evil"}"#),
            ("analytics", "{}"),
        ] {
            let refused = q.enqueue(job(ty, input)).await.unwrap();
            match refused {
                Err(QueueError::Invalid(m)) => assert!(m.contains("not granted"), "{m}"),
                other => panic!("{ty} {input}: {other:?}"),
            }
        }
        assert_eq!(q.follow_ups().len(), 3);
    }

    #[tokio::test]
    async fn follow_ups_stop_at_the_depth_limit() {
        let mut deep = QueueCtx::new(CallTag::new("github", "42"), 10, scope(3), None);
        let refused = deep.enqueue(job("event_ingestion", "{}")).await.unwrap();
        assert!(
            matches!(refused, Err(QueueError::LimitReached(3))),
            "{refused:?}"
        );
        let mut shallow = QueueCtx::new(CallTag::new("github", "42"), 10, scope(2), None);
        shallow
            .enqueue(job("event_ingestion", "{}"))
            .await
            .unwrap()
            .unwrap();
    }
}
