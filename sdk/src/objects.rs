//! Object storage under this plugin's own prefix.

use crate::bindings::drowl::plugin::objects as wit;

pub use wit::ObjectError;

/// Writes an object under a relative key (`cache/page-1.json`); returns the full key.
pub fn put(key: &str, data: &[u8], content_type: &str) -> Result<String, ObjectError> {
    wit::put(key, data, content_type)
}

/// Reads an object this plugin wrote.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
    wit::get(key)
}


impl From<ObjectError> for crate::JobError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::Unavailable(m) => Self::retryable(m),
            other => Self::permanent(other.to_string()),
        }
    }
}
