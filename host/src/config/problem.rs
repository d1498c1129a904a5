//! What is wrong with a setting, said on one line that names where it was set.

use std::path::{Path, PathBuf};

/// Where a refused value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A key of a settings file (the TOML file, or the JSON plugin or schedules file).
    File {
        /// The file, as the operator named it.
        path: PathBuf,
        /// The key's dotted path, e.g. `plugins.github.config.token` (empty for the
        /// file as a whole).
        key: String,
        /// The 1-based line, when the parser knows it.
        line: Option<usize>,
    },
    /// A command-line flag, e.g. `--type-limit`.
    Flag(String),
    /// An environment variable, e.g. `REDIS_URL`.
    Env(String),
    /// Said by the message itself (the checks `serve` makes at start name their flags).
    Message,
}

/// One problem with the settings: start-up stops on any, and `config check` lists them
/// all, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value was set.
    pub place: Place,
    /// What is wrong, and where possible what to write instead.
    pub message: String,
}

impl Problem {
    /// A problem with `key` of the file at `path`.
    pub fn file(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: Place::File {
                path: path.to_path_buf(),
                key: key.into(),
                line: None,
            },
            message: message.into(),
        }
    }

    /// A problem with a flag's value.
    pub fn flag(flag: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: Place::Flag(flag.into()),
            message: message.into(),
        }
    }

    /// A problem whose message names its flags itself.
    pub fn said(message: impl Into<String>) -> Self {
        Self {
            place: Place::Message,
            message: message.into(),
        }
    }

    /// A problem with an environment variable's value.
    pub fn env(var: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: Place::Env(var.into()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Messages may quote multi-line parser output: one line per problem, always.
        let message = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match &self.place {
            Place::File { path, key, line } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                if key.is_empty() {
                    write!(f, ": {message}")
                } else {
                    write!(f, ": {key}: {message}")
                }
            }
            Place::Flag(flag) => write!(f, "{flag}: {message}"),
            Place::Env(var) => write!(f, "{var}: {message}"),
            Place::Message => f.write_str(&message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_one_line_naming_file_line_and_key() {
        let mut p = Problem::file(Path::new("drowl.toml"), "queue.nme", "unknown key\n  here");
        assert_eq!(p.to_string(), "drowl.toml: queue.nme: unknown key here");
        if let Place::File { line, .. } = &mut p.place {
            *line = Some(3);
        }
        assert_eq!(p.to_string(), "drowl.toml:3: queue.nme: unknown key here");
        assert_eq!(
            Problem::flag("--type-limit", "bad").to_string(),
            "--type-limit: bad"
        );
        assert_eq!(
            Problem::env("REDIS_URL", "bad").to_string(),
            "REDIS_URL: bad"
        );
    }
}
