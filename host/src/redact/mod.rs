//! Keeping secrets out of messages, logs and job records.
//!
//! A leaf module: it imports nothing from the crate, so every layer (storage, the
//! capabilities, the queue, the CLI) can redact without depending on anything above it.
//!
//! - [`Redactor`]: one plugin's secrets and their encodings, masked in one pass.
//! - [`redact_url`]: a connection URL with its password masked.

mod secrets;
mod url;

pub use secrets::{MAX_MESSAGE_BYTES, Redactor};
pub use url::redact_url;
