//! Who a host call is for: the plugin id and job id every capability's span carries.

use std::sync::Arc;

/// The plugin and job a capability context serves, cheap to clone (two `Arc<str>`), so
/// every context can name both in its `drowl.<iface>.<fn>` spans and log lines.
#[derive(Debug, Clone)]
pub struct CallTag {
    /// The plugin id.
    pub plugin: Arc<str>,
    /// The queue job id.
    pub job: Arc<str>,
}

impl CallTag {
    /// A tag for `plugin` running `job`.
    pub fn new(plugin: impl Into<Arc<str>>, job: impl Into<Arc<str>>) -> Self {
        Self {
            plugin: plugin.into(),
            job: job.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every host call runs in a `drowl.<iface>.<fn>` span that names the plugin and job.

    use std::sync::{Arc, Mutex};

    use tracing::Subscriber;
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
    use tracing_subscriber::registry::Registry;

    use super::CallTag;
    use crate::bindings::host_api::drowl::plugin::{kv::Host as _, queue::Host as _};
    use crate::capabilities::kv::KvCtx;
    use crate::capabilities::queue::QueueCtx;
    use crate::storage::memory::MemoryStore;

    /// Records each new span's name and fields as `name plugin=.. job=..`.
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    impl<S: Subscriber> Layer<S> for Spans {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let mut fields = Fields(attrs.metadata().name().to_owned());
            attrs.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }

    #[test]
    fn host_calls_run_in_named_spans_with_plugin_and_job() {
        let spans = Spans::default();
        let subscriber = Registry::default()
            .with(spans.clone())
            .with(tracing_subscriber::filter::LevelFilter::DEBUG);
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let tag = CallTag::new("github", "job-7");
                let mut kv = KvCtx::new(
                    tag.clone(),
                    Arc::new(MemoryStore::default()),
                    "github",
                    1024,
                );
                kv.get("k".into()).await.unwrap().unwrap();
                let mut queue = QueueCtx::new(tag, 1, Default::default(), None);
                queue.progress(5).await.unwrap();
            });
        });
        let seen = spans.0.lock().unwrap().clone();
        assert!(
            seen.contains(&"drowl.kv.get plugin=github job=job-7".to_owned()),
            "{seen:?}"
        );
        assert!(
            seen.contains(&"drowl.queue.progress plugin=github job=job-7".to_owned()),
            "{seen:?}"
        );
    }
}
