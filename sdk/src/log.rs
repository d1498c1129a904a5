//! Structured logging into the job's record; lines are attributed to the plugin and job.

use crate::bindings::drowl::plugin0_1_0::log as wit;

pub use wit::Level;

/// Writes a line with structured fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wit::log(level, message, &fields);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    wit::log(Level::Debug, message, &[]);
}

/// Writes an info line.
pub fn info(message: &str) {
    wit::log(Level::Info, message, &[]);
}

/// Writes a warning.
pub fn warn(message: &str) {
    wit::log(Level::Warn, message, &[]);
}

/// Writes an error line.
pub fn error(message: &str) {
    wit::log(Level::Error, message, &[]);
}
