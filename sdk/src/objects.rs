//! Object storage under this plugin's own prefix.

use crate::bindings::drowl::plugin0_1_0::objects as wit;

pub use wit::ObjectError;

/// Writes an object under a relative key (`cache/page-1.json`); returns the full key.
pub fn put(key: &str, data: &[u8], content_type: &str) -> Result<String, ObjectError> {
    wit::put(key, data, content_type)
}

/// Reads an object this plugin wrote.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
    wit::get(key)
}

/// A one-line description of an object error.
pub fn describe_error(e: &ObjectError) -> String {
    match e {
        ObjectError::InvalidKey(m) => format!("invalid object key: {m}"),
        ObjectError::TooLarge(n) => format!("object larger than the host's limit of {n} bytes"),
        ObjectError::Unavailable(m) => format!("object storage unavailable: {m}"),
    }
}

impl From<ObjectError> for crate::JobError {
    /// Storage outages are retryable; a bad key or size will not improve on retry.
    fn from(e: ObjectError) -> Self {
        let message = describe_error(&e);
        match e {
            ObjectError::Unavailable(_) => Self::retryable(message),
            _ => Self::permanent(message),
        }
    }
}
