//! The data directory's plugin store: installed components as files named by their
//! SHA-256, `<data dir>/components/<sha256>.wasm`.
//!
//! Addressed by content, so an upgrade adds a file and never overwrites the one a job
//! that started earlier was loaded from, and a file is what its name says or it is not
//! used. The database's `plugin_components` is where components are installed; this
//! store is each machine's copy of them, filled by `plugin install` on the machine that
//! runs it and, on any other, by the daemon the first time a row names a component it
//! lacks.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::storage::{PluginStore, StorageError};

/// Why a component could not be stored or found.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// A file of the store could not be read or written.
    #[error("plugin store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The problem.
        #[source]
        source: std::io::Error,
    },
    /// Neither this machine nor the database has the component.
    #[error(
        "component {sha256} is neither in {dir} nor in the database's plugin_components; install the plugin again (`drowl-host plugin upgrade ID FILE`)"
    )]
    Missing {
        /// Its SHA-256.
        sha256: String,
        /// The store's directory.
        dir: PathBuf,
    },
    /// The database holds other bytes under the digest.
    #[error("the database's plugin_components holds bytes under {sha256} whose SHA-256 is {found}")]
    Corrupt {
        /// The digest asked for.
        sha256: String,
        /// The digest of what was found.
        found: String,
    },
    /// The database could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The SHA-256 of `bytes`, hex, lowercase (as `plugin check` prints and rows store it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` is a SHA-256 in lowercase hex, as the store names files: a row drowl's
/// API wrote could hold anything, and it becomes a file name.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<data dir>/components`.
#[derive(Debug, Clone)]
pub struct ComponentStore {
    dir: PathBuf,
}

impl ComponentStore {
    /// The store of the data directory `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("components"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the component with digest `sha256` is kept.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// Keeps `bytes` (whose digest is `sha256`) in the store; returns its path. Written
    /// to a temporary file and renamed, so a daemon never loads half a file.
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> Result<PathBuf, ComponentError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ComponentError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(sha256);
        if self.holds(&path, sha256) {
            return Ok(path);
        }
        let tmp = self.dir.join(format!(
            ".{sha256}.{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ComponentError::Io {
                path: path.clone(),
                source: e,
            }
        })?;
        Ok(path)
    }

    /// The path of component `sha256`, fetched from the database into the store when
    /// this machine does not have it (or has a file that is not it).
    pub async fn fetch(
        &self,
        sha256: &str,
        db: &dyn PluginStore,
    ) -> Result<PathBuf, ComponentError> {
        let path = self.path(sha256);
        if self.holds(&path, sha256) {
            return Ok(path);
        }
        let bytes = db
            .component(sha256)
            .await?
            .ok_or_else(|| ComponentError::Missing {
                sha256: sha256.to_owned(),
                dir: self.dir.clone(),
            })?;
        let found = sha256_hex(&bytes);
        if found != sha256 {
            return Err(ComponentError::Corrupt {
                sha256: sha256.to_owned(),
                found,
            });
        }
        self.put(sha256, &bytes)
    }

    /// Whether the file at `path` exists and has the digest `sha256`: a file changed
    /// since it was stored is not used (and is replaced by [`Self::put`]).
    fn holds(&self, path: &Path, sha256: &str) -> bool {
        std::fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::plugins::memory::MemoryPluginStore;

    #[tokio::test]
    async fn components_are_kept_by_content_and_fetched_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = ComponentStore::new(dir.path());
        let db = MemoryPluginStore::default();
        let (a, b) = (b"component a".as_slice(), b"component b".as_slice());
        let (sa, sb) = (sha256_hex(a), sha256_hex(b));
        assert!(is_sha256(&sa) && !is_sha256("../x") && !is_sha256(&sa.to_uppercase()));

        // Stored here: found without the database.
        let pa = store.put(&sa, a).unwrap();
        assert_eq!(pa, dir.path().join("components").join(format!("{sa}.wasm")));
        assert_eq!(store.fetch(&sa, &db).await.unwrap(), pa);

        // Only in the database: fetched into the store.
        let e = store.fetch(&sb, &db).await.unwrap_err();
        assert!(matches!(e, ComponentError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("plugin upgrade"), "{e}");
        db.put_component(&sb, b).await.unwrap();
        let pb = store.fetch(&sb, &db).await.unwrap();
        assert_eq!(std::fs::read(&pb).unwrap(), b);

        // A file that is not what its name says is replaced from the database.
        std::fs::write(&pb, b"tampered").unwrap();
        assert_eq!(
            std::fs::read(store.fetch(&sb, &db).await.unwrap()).unwrap(),
            b
        );

        // The database holding other bytes under a digest is refused.
        let sc = sha256_hex(b"c");
        db.put_component(&sc, b"not c").await.unwrap();
        let e = store.fetch(&sc, &db).await.unwrap_err();
        assert!(matches!(e, ComponentError::Corrupt { .. }), "{e}");
        assert!(!store.path(&sc).exists());
    }
}
