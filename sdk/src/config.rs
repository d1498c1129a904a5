//! The plugin's configuration, typed and validated by the host against the manifest.

use crate::bindings::drowl::plugin0_1_0::config as wit;

/// The value of a non-secret field declared in the manifest, default applied.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// The value of a `secret` field. The host redacts it from everything the plugin logs.
pub fn secret(key: &str) -> Option<String> {
    wit::secret(key)
}

/// A required non-secret field; the error tells the operator which key to set.
pub fn require(key: &str) -> Result<String, crate::JobError> {
    get(key).ok_or_else(|| crate::JobError::invalid_config(format!("set config `{key}`")))
}

/// The value of `key` in the non-secret configuration a request carries (`config` of an
/// ingest, enrich, export or resolve request, or a delivery).
pub fn value_in<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
