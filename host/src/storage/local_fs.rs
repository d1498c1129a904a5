//! The embedded object store: files under a root directory.
//!
//! [`ObjectKey`]s are already validated, but this store does not rely on that alone: the
//! root is opened once as a `cap_std::fs::Dir` and every access is relative to that handle,
//! so no key, symlink or `..` can reach a file outside the root (defence in depth, and the
//! reason cap-std is a dependency).
//!
//! Writes are atomic: bytes go to a temporary file in the destination directory, are
//! flushed to disk, then renamed over the final name, so a crash leaves either the old
//! object, the new one, or a stray temporary file that no key can name — never a
//! half-written object.
//!
//! Limitation compared with S3: a key cannot be both an object and a "directory" of other
//! keys (`a` and `a/b`); the second write fails as [`StorageError::Invalid`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use super::{ObjectKey, ObjectStore, Result, StorageError};

/// Prefix of temporary files; keys may contain such a segment, but the random suffix makes
/// a collision with a live temporary file practically impossible.
const TMP_PREFIX: &str = ".tmp-";

fn io_err(what: &str, key: &ObjectKey, e: std::io::Error) -> StorageError {
    use std::io::ErrorKind as K;
    let msg = format!("{what} {key}: {e}");
    match e.kind() {
        K::NotADirectory | K::IsADirectory | K::InvalidInput | K::InvalidFilename => {
            StorageError::Invalid(msg)
        }
        K::PermissionDenied | K::ReadOnlyFilesystem => StorageError::Config(msg),
        _ => StorageError::Unavailable(msg),
    }
}

/// Objects as files under one root directory, confined with cap-std.
#[derive(Debug, Clone)]
pub struct LocalFsStore {
    dir: Arc<Dir>,
    root: PathBuf,
}

impl LocalFsStore {
    /// Opens (creating if needed) `root`; this is the only use of ambient authority, every
    /// later access goes through the directory handle.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| {
            StorageError::Config(format!(
                "cannot create object directory {}: {e}",
                root.display()
            ))
        })?;
        let dir = Dir::open_ambient_dir(root, ambient_authority()).map_err(|e| {
            StorageError::Config(format!(
                "cannot open object directory {}: {e}",
                root.display()
            ))
        })?;
        Ok(Self {
            dir: Arc::new(dir),
            root: root.to_owned(),
        })
    }

    /// The root directory, for logs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn put_blocking(dir: &Dir, key: &ObjectKey, data: &[u8]) -> Result<()> {
        let path = Path::new(key.as_str());
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) => (p, n),
            _ => {
                return Err(StorageError::Invalid(format!(
                    "object key {key} has no file name"
                )));
            }
        };
        dir.create_dir_all(parent)
            .map_err(|e| io_err("cannot create directory for", key, e))?;
        let tmp = parent.join(format!(
            "{TMP_PREFIX}{}-{}",
            name.to_string_lossy(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| {
            let mut f = dir.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
            f.write_all(data)?;
            f.sync_all()
        })();
        if let Err(e) = written.and_then(|()| dir.rename(&tmp, dir, path)) {
            // Best effort: a leftover temporary file is harmless, only untidy.
            let _ = dir.remove_file(&tmp);
            return Err(io_err("cannot write object", key, e));
        }
        // Make the rename itself durable (best effort: not every filesystem supports it).
        if let Ok(d) = dir.open(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        }) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Sums the sizes of the files under `prefix`: the directory up to its last `/` is
    /// walked, and files whose path starts with `prefix` counted. Temporary files of
    /// writes in flight are not objects and are left out.
    fn prefix_bytes_blocking(dir: &Dir, prefix: &str) -> Result<u64> {
        let base = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let start = if base.is_empty() { "." } else { base };
        let mut total = 0;
        let mut todo = vec![(PathBuf::from(start), base.to_owned())];
        while let Some((path, rel)) = todo.pop() {
            let entries = match dir.read_dir(&path) {
                Ok(entries) => entries,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    return Err(StorageError::Unavailable(format!(
                        "cannot list objects under {prefix}: {e}"
                    )));
                }
            };
            for entry in entries {
                let entry = entry.map_err(|e| {
                    StorageError::Unavailable(format!("cannot list objects under {prefix}: {e}"))
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let key = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                // Only what can still lead to a key with the prefix.
                if !(key.starts_with(prefix) || prefix.starts_with(&format!("{key}/"))) {
                    continue;
                }
                let meta = entry.metadata().map_err(|e| {
                    StorageError::Unavailable(format!("cannot read metadata of {key}: {e}"))
                })?;
                if meta.is_dir() {
                    todo.push((path.join(&name), key));
                } else if meta.is_file() && !name.starts_with(TMP_PREFIX) {
                    total += meta.len();
                }
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl ObjectStore for LocalFsStore {
    async fn put(&self, key: &ObjectKey, data: bytes::Bytes, _content_type: &str) -> Result<()> {
        let dir = Arc::clone(&self.dir);
        let key = key.clone();
        tokio::task::spawn_blocking(move || Self::put_blocking(&dir, &key, &data))
            .await
            .map_err(|e| StorageError::Unavailable(format!("object write task failed: {e}")))?
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<bytes::Bytes>> {
        let dir = Arc::clone(&self.dir);
        let key = key.clone();
        tokio::task::spawn_blocking(move || match dir.read(key.as_str()) {
            Ok(b) => Ok(Some(bytes::Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            // `a/b` where `a` is an object: no such object either.
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(io_err("cannot read object", &key, e)),
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("object read task failed: {e}")))?
    }

    async fn prefix_bytes(&self, prefix: &str) -> Result<u64> {
        let dir = Arc::clone(&self.dir);
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || Self::prefix_bytes_blocking(&dir, &prefix))
            .await
            .map_err(|e| StorageError::Unavailable(format!("object listing task failed: {e}")))?
    }

    fn describe(&self, key: &ObjectKey) -> String {
        self.root.join(key.as_str()).display().to_string()
    }

    /// By path, not through the directory handle: a handle stays valid after the
    /// directory is removed or its volume unmounted, which is what this must notice.
    async fn ping(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(StorageError::Config(format!(
                "{} is not a directory",
                self.root.display()
            ))),
            Err(e) => Err(StorageError::Unavailable(format!(
                "object directory {}: {e}",
                self.root.display()
            ))),
        }
    }

    fn backend(&self) -> String {
        format!("embedded files under {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The health check notices the directory going away, although the handle the
    /// store opened stays valid.
    #[tokio::test]
    async fn ping_fails_once_the_directory_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("objects");
        let store = LocalFsStore::open(&root).unwrap();
        store.ping().await.expect("fresh directory");
        assert_eq!(
            store.backend(),
            format!("embedded files under {}", root.display())
        );
        std::fs::remove_dir_all(&root).unwrap();
        let e = store.ping().await.expect_err("directory removed");
        assert!(
            matches!(&e, StorageError::Unavailable(m) if m.contains(&root.display().to_string())),
            "{e}"
        );
    }

    #[tokio::test]
    async fn local_fs_follows_the_shared_prefix_bytes_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalFsStore::open(&tmp.path().join("objects")).unwrap();
        crate::storage::conformance::object_store_answers_ping(&store).await;
        crate::storage::conformance::object_prefix_bytes(&store).await;
        // A write in flight (a temporary file) is not an object yet.
        let prefix = ObjectKey::plugin_objects_prefix("tmpcheck").unwrap();
        let key = ObjectKey::plugin_object("tmpcheck", "a").unwrap();
        store
            .put(&key, bytes::Bytes::from_static(b"abc"), "")
            .await
            .unwrap();
        std::fs::write(
            tmp.path()
                .join("objects")
                .join(&prefix)
                .join(format!("{TMP_PREFIX}a-123")),
            [0; 50],
        )
        .unwrap();
        assert_eq!(store.prefix_bytes(&prefix).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn objects_round_trip_and_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalFsStore::open(&tmp.path().join("objects")).unwrap();
        let key = ObjectKey::plugin_object("github", "cache/page-1.json").unwrap();
        assert_eq!(store.get(&key).await.unwrap(), None);
        store
            .put(&key, bytes::Bytes::from_static(b"one"), "application/json")
            .await
            .unwrap();
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"one"[..]));
        store
            .put(&key, bytes::Bytes::from_static(b"two"), "application/json")
            .await
            .unwrap();
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"two"[..]));
        let on_disk = tmp
            .path()
            .join("objects/plugins/github/objects/cache/page-1.json");
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"two");
        assert_eq!(store.describe(&key), on_disk.display().to_string());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(on_disk.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("page-1.json")]);
    }

    #[tokio::test]
    async fn a_symlink_out_of_the_root_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.json"), b"secret").unwrap();
        let root = tmp.path().join("objects");
        let store = LocalFsStore::open(&root).unwrap();
        std::fs::create_dir_all(root.join("plugins/evil")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("plugins/evil/objects")).unwrap();
        let key = ObjectKey::plugin_object("evil", "secret.json").unwrap();
        assert!(
            store.get(&key).await.is_err(),
            "cap-std must refuse to leave the root"
        );
        assert!(
            store
                .put(&key, bytes::Bytes::from_static(b"x"), "")
                .await
                .is_err()
        );
        assert_eq!(
            std::fs::read(outside.join("secret.json")).unwrap(),
            b"secret"
        );
    }

    #[tokio::test]
    async fn concurrent_writers_of_one_key_leave_a_whole_object() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalFsStore::open(tmp.path()).unwrap();
        let key = ObjectKey::plugin_object("github", "big.bin").unwrap();
        let a = bytes::Bytes::from(vec![b'a'; 1 << 20]);
        let b = bytes::Bytes::from(vec![b'b'; 1 << 20]);
        let (ra, rb) = tokio::join!(
            store.put(&key, a.clone(), ""),
            store.put(&key, b.clone(), "")
        );
        ra.unwrap();
        rb.unwrap();
        let got = store.get(&key).await.unwrap().unwrap();
        assert!(got == a || got == b, "object must be one whole write");
    }
}
