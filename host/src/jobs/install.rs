//! Which file in the plugins directory is which plugin: the operator's decision, never the
//! plugin's.
//!
//! A plugin's id keys everything the operator gives it (config, secrets, grants) and
//! everything it keeps (key-value namespace, object prefix, cursors). Taken from the
//! manifest, the id would be whatever the component says: a component declaring `github`,
//! placed next to the real one, would be loaded in its place and handed github's token.
//! So the id comes from the operator: the file's name in the plugins directory
//! (`github_plugin.wasm`, `github-plugin.wasm` and `github.wasm` are all `github`), or an
//! entry of the plugin config that pins a file, and optionally its SHA-256, to an id.
//!
//! The daemon never guesses: two files that would be one plugin, a pinned file that is
//! missing or has another digest, or a component whose manifest declares an id other than
//! the one it is installed as, stop the start with the files named. Files and digests are
//! checked before any plugin code runs; the declared id once the component is loaded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::registry::{ReadyPlugin, Registry, RegistryError, addressed_as};
use crate::capabilities::LoadedPlugin;
use crate::ids::{BadPluginId, validate_plugin_id};
use crate::policy::{HostPolicy, PluginSettings};
use crate::storage::Storage;

/// Why the plugins directory cannot be installed as it is.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The directory does not exist: the operator has not installed any plugin yet.
    #[error(
        "plugin dir {dir} does not exist: create it and put plugin components (*.wasm) in \
         it (scripts/build-plugins.sh builds the first-party ones into \
         target/wasm32-wasip2/plugin/), or point --plugins (DROWL_PLUGIN_DIR) at the \
         directory that holds them, or install them into the plugins table with \
         `drowl-host plugin install FILE`"
    )]
    Missing {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory cannot be listed.
    #[error("plugin dir {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The problem.
        #[source]
        source: std::io::Error,
    },
    /// A pinned file cannot be read to check its digest.
    #[error("cannot read plugin file {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The problem.
        #[source]
        source: std::io::Error,
    },
    /// A file's name makes no plugin id, and no entry pins it to one.
    #[error(
        "plugin file {file}: its name does not make a plugin id ({source}); rename it to <id>.wasm or pin it to an id in the plugin config with \"file\""
    )]
    BadFileName {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: BadPluginId,
    },
    /// A plugin config entry that pins a file or digest is not named by a plugin id.
    #[error("plugin config: entry `{id}` pins a file, but {source}")]
    BadId {
        /// The entry.
        id: String,
        /// Why.
        #[source]
        source: BadPluginId,
    },
    /// A pinned file name is not a plain `.wasm` file name.
    #[error(
        "plugin config: `{id}` pins file {file:?}; write the name of a .wasm file in the plugins directory, without directories"
    )]
    BadPin {
        /// The entry.
        id: String,
        /// What it pins.
        file: String,
    },
    /// Two entries pin one file.
    #[error("plugin config pins {file:?} to both `{first}` and `{second}`; a file is one plugin")]
    PinnedTwice {
        /// The file.
        file: String,
        /// One id.
        first: String,
        /// The other.
        second: String,
    },
    /// A pinned file (or the file of a pinned digest) is not in the directory.
    #[error("plugin config pins `{id}` to {file}, which is not in {dir}")]
    PinnedMissing {
        /// The entry.
        id: String,
        /// The file it pins (or `a file named <id>.wasm`).
        file: String,
        /// The plugins directory.
        dir: PathBuf,
    },
    /// A pinned digest is not a SHA-256 in hex.
    #[error("plugin config: `{id}`: sha256 {given:?} is not a SHA-256 in hex (64 characters)")]
    BadDigest {
        /// The entry.
        id: String,
        /// What it gives.
        given: String,
    },
    /// A file is not the build the operator pinned.
    #[error(
        "plugin file {file} does not have the SHA-256 the plugin config pins for `{id}`: pinned {expected}, file has {found}; install the pinned build or update the pin"
    )]
    DigestMismatch {
        /// The entry.
        id: String,
        /// The file.
        file: PathBuf,
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// Two files would be one plugin.
    #[error(
        "plugin files {first} and {second} would both be plugin `{id}`; remove or rename one (x.wasm, x-plugin.wasm and x_plugin.wasm are all plugin `x`, and drowl's API addresses `x` and `x-plugin` alike), or pin each to an id of its own in the plugin config"
    )]
    Duplicate {
        /// The id (as the first file has it).
        id: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A component declares an id other than the one it is installed as.
    #[error(
        "plugin file {file} is installed as `{assigned}` ({by}), but its manifest declares `{declared}`; a plugin never runs under, or receives the settings of, an id other than its own: {fix}"
    )]
    IdMismatch {
        /// The file.
        file: PathBuf,
        /// The id the operator installed it as.
        assigned: String,
        /// The id its manifest declares.
        declared: String,
        /// Where `assigned` came from.
        by: &'static str,
        /// What to do.
        fix: String,
    },
    /// A loaded plugin that the plan does not list (a caller's mistake).
    #[error("plugin file {0} is not in the install plan")]
    NotPlanned(PathBuf),
    /// The registry refused a plugin.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The id a file in the plugins directory is installed as when no entry pins it: its
/// name without `.wasm`, `_` read as `-`, without a `-plugin` suffix (cargo names the
/// component of package `github-plugin` `github_plugin.wasm`; drowl's API calls it
/// `github-plugin`; the plugin is `github`).
pub fn id_for_file_name(name: &str) -> Result<String, BadPluginId> {
    let stem = name.strip_suffix(".wasm").unwrap_or(name).replace('_', "-");
    let id = stem.strip_suffix("-plugin").unwrap_or(&stem);
    validate_plugin_id(id)?;
    Ok(id.to_owned())
}

/// A file name that installs as `id` (`id.wasm`, or `id-plugin.wasm` for an id that
/// itself ends in `-plugin`).
pub fn file_name_for(id: &str) -> String {
    if id.ends_with("-plugin") {
        format!("{id}-plugin.wasm")
    } else {
        format!("{id}.wasm")
    }
}

/// Where an installed id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AssignedBy {
    FileName,
    Pin,
}

impl AssignedBy {
    fn describe(self) -> &'static str {
        match self {
            Self::FileName => "from its file name",
            Self::Pin => "pinned in the plugin config",
        }
    }
}

/// One file to install.
#[derive(Debug, Clone)]
struct Planned {
    path: PathBuf,
    id: String,
    by: AssignedBy,
    /// The pinned SHA-256, lowercase hex.
    sha256: Option<String>,
}

/// The files of a plugins directory and the ids the operator installs them as, checked
/// before any of them is loaded.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    planned: Vec<Planned>,
}

impl InstallPlan {
    /// Lists `dir`'s `*.wasm` files and assigns each its id, from `plugins` (the plugin
    /// config: an entry with `file` pins that file to the entry's id) or from its name
    /// ([`id_for_file_name`]). Fails, naming the files, when two files would be one
    /// plugin, when a pinned file is missing, or when a file does not have the SHA-256
    /// pinned for it.
    pub fn new(
        dir: &Path,
        plugins: &HashMap<String, PluginSettings>,
    ) -> Result<Self, InstallError> {
        let dir_err = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound => InstallError::Missing {
                dir: dir.to_path_buf(),
            },
            _ => InstallError::Dir {
                dir: dir.to_path_buf(),
                source,
            },
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(dir_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        // Sorted, so that which of two problems is reported does not depend on hashing.
        let entries: BTreeMap<&str, &PluginSettings> =
            plugins.iter().map(|(k, v)| (k.as_str(), v)).collect();

        let mut pins: BTreeMap<&str, &str> = BTreeMap::new();
        for (&id, settings) in &entries {
            if settings.file.is_none() && settings.sha256.is_none() {
                continue;
            }
            validate_plugin_id(id).map_err(|source| InstallError::BadId {
                id: id.to_owned(),
                source,
            })?;
            if let Some(given) = &settings.sha256 {
                parse_digest(given).ok_or_else(|| InstallError::BadDigest {
                    id: id.to_owned(),
                    given: given.clone(),
                })?;
            }
            let Some(file) = settings.file.as_deref() else {
                continue;
            };
            let plain = Path::new(file).file_name().and_then(|f| f.to_str()) == Some(file)
                && file.ends_with(".wasm");
            if !plain {
                return Err(InstallError::BadPin {
                    id: id.to_owned(),
                    file: file.to_owned(),
                });
            }
            if let Some(first) = pins.insert(file, id) {
                return Err(InstallError::PinnedTwice {
                    file: file.to_owned(),
                    first: first.to_owned(),
                    second: id.to_owned(),
                });
            }
        }

        let mut planned: Vec<Planned> = Vec::with_capacity(files.len());
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let (id, by) = match pins.remove(name) {
                Some(id) => (id.to_owned(), AssignedBy::Pin),
                None => {
                    let id =
                        id_for_file_name(name).map_err(|source| InstallError::BadFileName {
                            file: path.clone(),
                            source,
                        })?;
                    (id, AssignedBy::FileName)
                }
            };
            if let Some(other) = planned
                .iter()
                .find(|p| addressed_as(&p.id) == addressed_as(&id))
            {
                return Err(InstallError::Duplicate {
                    id: other.id.clone(),
                    first: other.path.clone(),
                    second: path,
                });
            }
            let sha256 = entries
                .get(id.as_str())
                .and_then(|s| s.sha256.as_deref())
                .and_then(parse_digest);
            planned.push(Planned {
                path,
                id,
                by,
                sha256,
            });
        }
        if let Some((file, id)) = pins.pop_first() {
            return Err(InstallError::PinnedMissing {
                id: id.to_owned(),
                file: file.to_owned(),
                dir: dir.to_path_buf(),
            });
        }
        for (&id, settings) in &entries {
            if planned.iter().any(|p| p.id == id) {
                continue;
            }
            if settings.sha256.is_some() {
                return Err(InstallError::PinnedMissing {
                    id: id.to_owned(),
                    file: format!("a file named {id}.wasm"),
                    dir: dir.to_path_buf(),
                });
            }
            tracing::warn!(
                plugin = id,
                dir = %dir.display(),
                "the plugin config has settings for `{id}`, but no file is installed as `{id}`"
            );
        }

        // Before any plugin code runs: a file that is not the pinned build is never loaded.
        for p in &planned {
            let Some(expected) = &p.sha256 else { continue };
            let bytes = std::fs::read(&p.path).map_err(|source| InstallError::Read {
                file: p.path.clone(),
                source,
            })?;
            check_digest(p, expected, &hex::encode(Sha256::digest(&bytes)))?;
        }
        Ok(Self { planned })
    }

    /// The files to load, in order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.planned.iter().map(|p| p.path.as_path())
    }

    /// The id `file` is installed as.
    pub fn id_of(&self, file: &Path) -> Option<&str> {
        self.find(file).map(|p| p.id.as_str())
    }

    fn find(&self, file: &Path) -> Option<&Planned> {
        self.planned.iter().find(|p| p.path == file)
    }

    /// Checks a loaded file against the plan: it is planned, still has its pinned digest
    /// (if any), and its manifest declares the id it is installed as. Returns that id.
    pub fn check_loaded(&self, file: &Path, plugin: &LoadedPlugin) -> Result<&str, InstallError> {
        let p = self
            .find(file)
            .ok_or_else(|| InstallError::NotPlanned(file.to_path_buf()))?;
        if let Some(expected) = &p.sha256 {
            check_digest(p, expected, &plugin.sha256.to_ascii_lowercase())?;
        }
        let declared = &plugin.manifest.id;
        if *declared != p.id {
            return Err(mismatch(p, declared));
        }
        Ok(&p.id)
    }

    /// Installs the loaded files: each under its planned id, with that id's settings.
    ///
    /// Fails when a component declares an id other than the one it is installed as, or
    /// no longer has its pinned digest (replaced since [`Self::new`] checked it). A
    /// plugin whose settings do not fit it (a missing config key, an invalid grant) is
    /// reported and left out, as one that fails to load: the others still serve.
    pub fn build(
        &self,
        mut loaded: Vec<(PathBuf, LoadedPlugin)>,
        policy: &HostPolicy,
        storage: &Storage,
    ) -> Result<Registry, InstallError> {
        loaded.sort_by(|a, b| a.0.cmp(&b.0));
        let mut registry = Registry::default();
        for (file, plugin) in loaded {
            let id = self.check_loaded(&file, &plugin)?.to_owned();
            match ReadyPlugin::prepare_as(id, plugin, policy, storage) {
                Ok(ready) => {
                    let ready = registry.insert(ready)?;
                    tracing::info!(
                        plugin = ready.id(),
                        world = ready.role().world(),
                        file = %file.display(),
                        "plugin ready"
                    );
                }
                Err(e) => {
                    tracing::error!(file = %file.display(), "plugin not installed: {e}");
                }
            }
        }
        Ok(registry)
    }
}

/// A digest as the plugin config may write it (hex, either case, `sha256:` optional),
/// lowercase.
fn parse_digest(given: &str) -> Option<String> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn check_digest(p: &Planned, expected: &str, found: &str) -> Result<(), InstallError> {
    if expected == found {
        Ok(())
    } else {
        Err(InstallError::DigestMismatch {
            id: p.id.clone(),
            file: p.path.clone(),
            expected: expected.to_owned(),
            found: found.to_owned(),
        })
    }
}

/// The refusal of a component that declares `declared` but is installed as another id,
/// with what would install it as what it says it is.
fn mismatch(p: &Planned, declared: &str) -> InstallError {
    let name = p
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fix = match p.by {
        AssignedBy::Pin => format!(
            "the plugin config pins {name} to `{}`; install the right file or fix the pin",
            p.id
        ),
        AssignedBy::FileName => format!(
            "if it is meant to be `{declared}`, rename it to {} or pin it in the plugin config with \"{declared}\": {{\"file\": \"{name}\"}}",
            file_name_for(declared)
        ),
    };
    InstallError::IdMismatch {
        file: p.path.clone(),
        assigned: p.id.clone(),
        declared: declared.to_owned(),
        by: p.by.describe(),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_makes_an_id() {
        for (name, id) in [
            ("github_plugin.wasm", "github"),
            ("github-plugin.wasm", "github"),
            ("github.wasm", "github"),
            ("dev_to_2.wasm", "dev-to-2"),
            ("plugin.wasm", "plugin"),
            ("x-plugin-plugin.wasm", "x-plugin"),
        ] {
            assert_eq!(id_for_file_name(name).as_deref(), Ok(id), "{name}");
        }
        for id in ["github", "x-plugin", "plugin"] {
            assert_eq!(
                id_for_file_name(&file_name_for(id)).as_deref(),
                Ok(id),
                "{id}"
            );
        }
        for bad in [
            "GitHub.wasm",
            "-plugin.wasm",
            "_plugin.wasm",
            "a b.wasm",
            ".wasm",
        ] {
            assert!(id_for_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_plugin_dir_says_how_to_get_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("plugins.d");
        let e = InstallPlan::new(&missing, &HashMap::new())
            .expect_err("a missing dir is an error")
            .to_string();
        assert!(e.contains("plugins.d does not exist"), "{e}");
        assert!(
            e.contains("scripts/build-plugins.sh") && e.contains("--plugins"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "one line: {e}");
    }

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), f.as_bytes()).unwrap();
        }
        dir
    }

    fn settings(entries: &[(&str, Option<&str>, Option<&str>)]) -> HashMap<String, PluginSettings> {
        entries
            .iter()
            .map(|(id, file, sha)| {
                (
                    (*id).to_owned(),
                    PluginSettings {
                        file: file.map(str::to_owned),
                        sha256: sha.map(str::to_owned),
                        ..PluginSettings::default()
                    },
                )
            })
            .collect()
    }

    fn ids(plan: &InstallPlan) -> Vec<(String, String)> {
        plan.planned
            .iter()
            .map(|p| {
                let name = p.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, p.id.clone())
            })
            .collect()
    }

    fn sha(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    #[test]
    fn ids_come_from_file_names_or_pins_and_other_files_are_ignored() {
        let dir = dir_with(&[
            "github_plugin.wasm",
            "keywords.wasm",
            "gh2.wasm",
            "notes.txt",
        ]);
        let plan = InstallPlan::new(
            dir.path(),
            &settings(&[("other-gh", Some("gh2.wasm"), None), ("unused", None, None)]),
        )
        .unwrap();
        assert_eq!(
            ids(&plan),
            [
                ("gh2.wasm".to_owned(), "other-gh".to_owned()),
                ("github_plugin.wasm".to_owned(), "github".to_owned()),
                ("keywords.wasm".to_owned(), "keywords".to_owned()),
            ]
        );
        assert_eq!(plan.id_of(&dir.path().join("gh2.wasm")), Some("other-gh"));
    }

    #[test]
    fn two_files_that_would_be_one_plugin_are_refused_with_both_named() {
        for (a, b) in [
            ("hostile.wasm", "hostile_plugin.wasm"),
            ("hostile-plugin.wasm", "hostile.wasm"),
            ("x-plugin-plugin.wasm", "x.wasm"),
        ] {
            let dir = dir_with(&[a, b]);
            let e = InstallPlan::new(dir.path(), &HashMap::new()).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, InstallError::Duplicate { .. }), "{msg}");
            assert!(msg.contains(a) && msg.contains(b), "{msg}");
        }
        // A pin that makes a second `github`.
        let dir = dir_with(&["github.wasm", "impostor.wasm"]);
        let e = InstallPlan::new(
            dir.path(),
            &settings(&[("github-plugin", Some("impostor.wasm"), None)]),
        )
        .unwrap_err();
        assert!(matches!(e, InstallError::Duplicate { .. }), "{e}");
    }

    #[test]
    fn pins_must_name_files_that_exist_with_their_digest() {
        let dir = dir_with(&["github.wasm", "keywords.wasm"]);
        let plan = |s: &[(&str, Option<&str>, Option<&str>)]| {
            InstallPlan::new(dir.path(), &settings(s)).map(|_| ())
        };
        let good = sha("github.wasm");
        plan(&[("github", None, Some(&good))]).unwrap();
        plan(&[(
            "github",
            Some("github.wasm"),
            Some(&format!("sha256:{}", good.to_uppercase())),
        )])
        .unwrap();

        let e = plan(&[("github", None, Some(&sha("other")))]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, InstallError::DigestMismatch { .. }), "{msg}");
        assert!(
            msg.contains("github.wasm") && msg.contains(&good) && msg.contains(&sha("other")),
            "{msg}"
        );

        for (s, what) in [
            (vec![("github", Some("gone.wasm"), None)], "not in"),
            (
                vec![("feed", None, Some(good.as_str()))],
                "a file named feed.wasm",
            ),
            (
                vec![("github", Some("../github.wasm"), None)],
                "without directories",
            ),
            (
                vec![("github", Some("github.txt"), None)],
                "without directories",
            ),
            (vec![("github", None, Some("abc"))], "not a SHA-256"),
            (vec![("Git", Some("github.wasm"), None)], "not kebab-case"),
            (
                vec![
                    ("a", Some("github.wasm"), None),
                    ("b", Some("github.wasm"), None),
                ],
                "to both `a` and `b`",
            ),
        ] {
            let msg = plan(&s).unwrap_err().to_string();
            assert!(msg.contains(what), "{s:?}: {msg}");
        }
    }

    #[test]
    fn a_bad_file_name_is_refused_with_the_file_named() {
        let dir = dir_with(&["My Plugin.wasm"]);
        let msg = InstallPlan::new(dir.path(), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("My Plugin.wasm") && msg.contains("rename it"),
            "{msg}"
        );
        // Pinned to an id, any name will do.
        InstallPlan::new(
            dir.path(),
            &settings(&[("mine", Some("My Plugin.wasm"), None)]),
        )
        .unwrap();
    }

    #[test]
    fn a_mismatch_says_how_to_fix_it() {
        let p = |name: &str, id: &str, by| Planned {
            path: PathBuf::from(format!("/p/{name}")),
            id: id.into(),
            by,
            sha256: None,
        };
        let msg =
            mismatch(&p("github.wasm", "github", AssignedBy::FileName), "hostile").to_string();
        assert!(
            msg.contains("/p/github.wasm is installed as `github` (from its file name), but its manifest declares `hostile`")
                && msg.contains("rename it to hostile.wasm"),
            "{msg}"
        );
        let msg = mismatch(
            &p("github-plugin.wasm", "github", AssignedBy::FileName),
            "github-plugin",
        )
        .to_string();
        assert!(
            msg.contains("rename it to github-plugin-plugin.wasm or pin it in the plugin config with \"github-plugin\": {\"file\": \"github-plugin.wasm\"}"),
            "{msg}"
        );
        let msg = mismatch(&p("gh.wasm", "github", AssignedBy::Pin), "hostile").to_string();
        assert!(
            msg.contains("pinned in the plugin config") && msg.contains("fix the pin"),
            "{msg}"
        );
    }
}
