//! A key-value store private to this plugin (cursors, caches, ETags).

use crate::bindings::drowl::plugin0_1_0::kv as wit;

pub use wit::KvError;

/// Reads a value.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    wit::get(key)
}

/// Writes a value.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    wit::set(key, value)
}

/// Deletes a key.
pub fn delete(key: &str) -> Result<(), KvError> {
    wit::delete(key)
}

/// Lists keys starting with `prefix`, at most `limit`.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    wit::list_keys(prefix, limit)
}

/// Reads a JSON value; a value that no longer parses as `T` reads as absent.
pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    Ok(get(key)?.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Writes a value as JSON.
pub fn set_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), KvError> {
    let bytes = serde_json::to_vec(value).map_err(|e| KvError::InvalidKey(e.to_string()))?;
    set(key, &bytes)
}

/// A one-line description of a key-value error.
pub fn describe_error(e: &KvError) -> String {
    match e {
        KvError::InvalidKey(m) => format!("invalid key: {m}"),
        KvError::TooLarge(n) => format!("value larger than the host's limit of {n} bytes"),
        KvError::Unavailable(m) => format!("key-value store unavailable: {m}"),
    }
}

impl From<KvError> for crate::JobError {
    /// Storage outages are retryable; a bad key or size will not improve on retry.
    fn from(e: KvError) -> Self {
        let message = describe_error(&e);
        match e {
            KvError::Unavailable(_) => Self::retryable(message),
            _ => Self::permanent(message),
        }
    }
}
