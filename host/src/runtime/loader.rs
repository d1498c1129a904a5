//! Loading a `.wasm` file: checking it is a drowl plugin, compiling it once, and reading
//! its manifest.
//!
//! Everything that can be wrong with a plugin file is found here, at load time, and
//! reported with what to do about it: not WebAssembly, a core module instead of a
//! component, a WIT version this host does not support, an import the host does not
//! provide, no drowl world exported, or a manifest that does not validate.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::Role;
use super::state::StoreState;
use crate::bindings::{enrichment, export, identity, ingestion, scheduled, webhook};
use crate::manifest::{DefaultSchedule, WebhookSpec};
use crate::manifest::{Manifest, ManifestError};

/// The WIT package versions of `drowl:plugin` this host can run.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

/// The interfaces of each contract version a plugin may import. 0.2.0 reuses every
/// 0.1.0 interface under its 0.1.0 name and adds `directory` (see `crate::bindings`).
const IMPORTABLE: &[(&str, &[&str])] = &[
    (
        "0.1.0",
        &["types", "log", "config", "kv", "objects", "http", "queue"],
    ),
    ("0.2.0", &["directory"]),
];

/// WASI interfaces a plugin may import. They are all provided with nothing granted
/// (no preopened directories, no environment, no sockets).
const ALLOWED_WASI: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
];

/// Why a file is not a loadable drowl plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No WebAssembly header.
    #[error(
        "{0} is not a WebAssembly file; pass the .wasm that `cargo build --release --target wasm32-wasip2` produced"
    )]
    NotWasm(String),
    /// A core module, not a component.
    #[error(
        "{0} is a core WebAssembly module, not a component; build the plugin with `--target wasm32-wasip2` (drowl-plugin-sdk produces a component)"
    )]
    CoreModule(String),
    /// Compilation failed.
    #[error("{name} is not a valid component: {message}")]
    Invalid {
        /// File name.
        name: String,
        /// What wasmtime said.
        message: String,
    },
    /// The component targets a WIT version this host does not support.
    #[error(
        "{name} targets drowl:plugin@{found}, but this drowl-host supports drowl:plugin@{supported}; rebuild it against a matching drowl-plugin-sdk or upgrade drowl-host"
    )]
    UnsupportedVersion {
        /// File name.
        name: String,
        /// The version found.
        found: String,
        /// The versions supported.
        supported: String,
    },
    /// The component imports something the host does not provide.
    #[error("{name} imports `{import}`, which drowl-host does not provide{hint}")]
    UnknownImport {
        /// File name.
        name: String,
        /// The import.
        import: String,
        /// Advice, starting with "; ".
        hint: String,
    },
    /// The component exports none of the drowl worlds.
    #[error(
        "{name} exports none of drowl's plugin worlds (ingestion-plugin, enrichment-plugin, export-plugin, identity-plugin); build it with drowl-plugin-sdk and one of its role features. It exports: {exports}"
    )]
    NoWorld {
        /// File name.
        name: String,
        /// What it exports.
        exports: String,
    },
    /// Instantiation and `describe` did not return within the describe budget.
    #[error(
        "{name}: describe did not return within {budget:?}; `describe` must only return the manifest, without sleeping, waiting or heavy work (operators can raise the budget with --describe-timeout-ms)"
    )]
    DescribeTimeout {
        /// File name.
        name: String,
        /// The describe budget.
        budget: std::time::Duration,
    },
    /// Instantiation or `describe` failed.
    #[error("{name}: {message}")]
    Describe {
        /// File name.
        name: String,
        /// What failed.
        message: String,
    },
    /// The manifest is invalid.
    #[error("{name}: {source}")]
    Manifest {
        /// File name.
        name: String,
        /// The problem.
        #[source]
        source: ManifestError,
    },
}

/// Where the `describe` export is (`drowl:plugin/plugin@0.1.0`, which every world of
/// every contract version exports).
pub(crate) type DescribeIndices = ingestion::exports::drowl::plugin::plugin::GuestIndices;
/// Where the `webhooks` export is (`drowl:plugin/webhooks@0.2.0`).
pub(crate) type WebhooksIndices = webhook::exports::drowl::plugin0_2_0::webhooks::GuestIndices;
/// Where the `schedules` export is (`drowl:plugin/schedules@0.2.0`).
pub(crate) type SchedulesIndices = scheduled::exports::drowl::plugin0_2_0::schedules::GuestIndices;

/// Where the role's export is, found once at load.
#[derive(Clone)]
pub(crate) enum RoleIndices {
    Ingestion(ingestion::exports::drowl::plugin::ingestion::GuestIndices),
    Enrichment(enrichment::exports::drowl::plugin::enrichment::GuestIndices),
    Export(export::exports::drowl::plugin::export::GuestIndices),
    Resolution(identity::exports::drowl::plugin0_2_0::resolution::GuestIndices),
    /// A webhook-only plugin: everything it does is in its `webhooks` export.
    Webhook,
}

/// A component ready to instantiate, with the exports its jobs call located once.
///
/// Exports are found interface by interface rather than world by world: contract versions
/// are additive (a 0.2.0 connector exports 0.1.0's `ingestion` and 0.2.0's `webhooks`), so
/// one set of interface bindings serves every component whatever version it targets.
pub(crate) struct PluginPre<T: 'static> {
    pub(crate) pre: InstancePre<T>,
    pub(crate) describe: DescribeIndices,
    pub(crate) role: RoleIndices,
    pub(crate) webhooks: Option<WebhooksIndices>,
    pub(crate) schedules: Option<SchedulesIndices>,
}

// By hand: a derive would require `T: Clone`, and the store data never is.
impl<T: 'static> Clone for PluginPre<T> {
    fn clone(&self) -> Self {
        Self {
            pre: self.pre.clone(),
            describe: self.describe.clone(),
            role: self.role.clone(),
            webhooks: self.webhooks.clone(),
            schedules: self.schedules.clone(),
        }
    }
}

/// A plugin compiled, checked and ready to instantiate; shared by every job that runs it.
pub struct LoadedPlugin<T: 'static> {
    /// Its validated manifest.
    pub manifest: Manifest,
    /// Which world it implements.
    pub role: Role,
    /// The WIT version it targets.
    pub wit_version: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: usize,
    /// Its imports, for `plugin check`.
    pub imports: Vec<String>,
    /// Its exports, for `plugin check`.
    pub exports: Vec<String>,
    pub(crate) pre: PluginPre<T>,
}

// By hand: a derive would require `T: Clone`.
impl<T: 'static> Clone for LoadedPlugin<T> {
    fn clone(&self) -> Self {
        Self {
            manifest: self.manifest.clone(),
            role: self.role,
            wit_version: self.wit_version.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
            imports: self.imports.clone(),
            exports: self.exports.clone(),
            pre: self.pre.clone(),
        }
    }
}

impl<T: 'static> std::fmt::Debug for LoadedPlugin<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.manifest.id)
            .field("role", &self.role)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// What `plugin check` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginReport<'a> {
    /// The manifest.
    pub manifest: &'a Manifest,
    /// The world.
    pub world: &'static str,
    /// WIT version.
    pub wit_version: &'a str,
    /// SHA-256.
    pub sha256: &'a str,
    /// Size in bytes.
    pub size: usize,
    /// Imports.
    pub imports: &'a [String],
    /// Exports.
    pub exports: &'a [String],
}

impl<T: 'static> LoadedPlugin<T> {
    /// The WIT world it implements (`connector-plugin` for an ingestion plugin that also
    /// receives webhooks).
    pub fn world(&self) -> &'static str {
        self.role
            .world_with(self.pre.webhooks.is_some(), self.pre.schedules.is_some())
    }

    /// Whether it receives webhook deliveries (it exports `webhooks`).
    pub fn receives_webhooks(&self) -> bool {
        self.pre.webhooks.is_some()
    }

    /// The report `plugin check` prints.
    pub fn report(&self) -> PluginReport<'_> {
        PluginReport {
            manifest: &self.manifest,
            world: self.world(),
            wit_version: &self.wit_version,
            sha256: &self.sha256,
            size: self.size,
            imports: &self.imports,
            exports: &self.exports,
        }
    }
}

/// Whether a WebAssembly binary is a component rather than a core module: after the
/// `\0asm` magic, core modules carry version 1 (`01 00`) and layer 0 (`00 00`), components
/// carry layer 1 (`01 00`).
fn is_component(bytes: &[u8]) -> bool {
    bytes.get(6..8) == Some(&[1, 0])
}

/// A contract version's position, for ordering (`0.10.0` after `0.2.0`).
fn version_order(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Splits `drowl:plugin/kv@0.1.0` into (`kv`, `0.1.0`).
fn drowl_interface(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("drowl:plugin/")?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

fn import_hint(import: &str) -> &'static str {
    if import.starts_with("wasi:sockets/") {
        "; plugins reach the network only through drowl:plugin/http: remove uses of std::net or socket crates"
    } else if import.starts_with("wasi:http/") {
        "; use drowl:plugin/http (the SDK's `http` module) instead of wasi:http"
    } else if import.starts_with("drowl:") {
        "; the plugin may have been built against a newer drowl-plugin-sdk"
    } else {
        "; only drowl:plugin and basic WASI interfaces are available to plugins"
    }
}

/// What loading a plugin may spend, and how large a manifest it may return.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DescribeLimits {
    /// The budget of instantiating the plugin and calling its `describe`.
    pub(crate) budget: super::Budget,
    /// Largest manifest accepted, serialised as JSON, in bytes.
    pub(crate) max_manifest_bytes: usize,
}

/// Checks, compiles and describes a plugin.
pub(crate) async fn load<T: StoreState>(
    engine: &Engine,
    linker: &Linker<T>,
    bytes: &[u8],
    name: &str,
    describe_state: impl FnOnce(Instant) -> T,
    slots: Option<&Arc<tokio::sync::Semaphore>>,
    limits: &DescribeLimits,
) -> Result<LoadedPlugin<T>, LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm(name.to_owned()));
    }
    if !is_component(bytes) {
        return Err(LoadError::CoreModule(name.to_owned()));
    }
    // Compiling is seconds of CPU for a big component: off the async workers, so loads
    // running side by side (and their describe deadlines) are not held up by it.
    let compiled = {
        let (engine, bytes) = (engine.clone(), bytes.to_vec());
        tokio::task::spawn_blocking(move || Component::new(&engine, &bytes)).await
    };
    let component = compiled
        .map_err(|e| wasmtime::format_err!("the compiler failed: {e}"))
        .and_then(|c| c)
        .map_err(|e| LoadError::Invalid {
            name: name.to_owned(),
            message: format!("{e:#}"),
        })?;
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();

    let mut versions = BTreeSet::new();
    for i in imports.iter().chain(exports.iter()) {
        if let Some((_, v)) = drowl_interface(i) {
            versions.insert(v.to_owned());
        }
    }
    for v in &versions {
        if !SUPPORTED_WIT_VERSIONS.contains(&v.as_str()) {
            return Err(LoadError::UnsupportedVersion {
                name: name.to_owned(),
                found: if v.is_empty() {
                    "(unversioned)".into()
                } else {
                    v.clone()
                },
                supported: SUPPORTED_WIT_VERSIONS.join(", "),
            });
        }
    }
    for i in &imports {
        let ok = match drowl_interface(i) {
            Some((iface, version)) => IMPORTABLE
                .iter()
                .any(|(v, ifaces)| *v == version && ifaces.contains(&iface)),
            None => ALLOWED_WASI.iter().any(|p| i.starts_with(p)),
        };
        if !ok {
            return Err(LoadError::UnknownImport {
                name: name.to_owned(),
                import: i.clone(),
                hint: import_hint(i).to_owned(),
            });
        }
    }
    let exported = |iface: &str| {
        exports
            .iter()
            .any(|e| drowl_interface(e).is_some_and(|(i, _)| i == iface))
    };
    let receives_webhooks = exported("webhooks");
    let suggests_schedules = exported("schedules");
    let role = if exported("ingestion") {
        Role::Ingestion
    } else if exported("enrichment") {
        Role::Enrichment
    } else if exported("export") {
        Role::Export
    } else if exported("resolution") {
        Role::Resolution
    } else if receives_webhooks {
        Role::Webhook
    } else {
        return Err(LoadError::NoWorld {
            name: name.to_owned(),
            exports: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        });
    };
    // Reading drowl's identities is the identity role's alone: the linker serves
    // `directory` to every store, so the role is what keeps it from other plugins.
    if role != Role::Resolution
        && let Some(i) = imports
            .iter()
            .find(|i| drowl_interface(i).is_some_and(|(iface, _)| iface == "directory"))
    {
        return Err(LoadError::UnknownImport {
            name: name.to_owned(),
            import: i.clone(),
            hint: format!(
                " to a plugin of the {} world; only identity plugins (identity-plugin) read drowl's identities",
                role.world()
            ),
        });
    }
    // The newest version among its interfaces: the contract the component needs (a
    // 0.2.0 component also uses the 0.1.0 interfaces 0.2.0 kept).
    let wit_version = versions
        .into_iter()
        .max_by(|a, b| version_order(a).cmp(&version_order(b)))
        .unwrap_or_else(|| SUPPORTED_WIT_VERSIONS[0].to_owned());

    let pre: InstancePre<T> =
        linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Describe {
                name: name.to_owned(),
                message: format!("cannot link: {e:#}"),
            })?;
    let describe_err = |e: wasmtime::Error| LoadError::Describe {
        name: name.to_owned(),
        message: format!(
            "the {} world's exports do not match drowl:plugin@{wit_version}: {e:#}",
            role.world_with(receives_webhooks, suggests_schedules)
        ),
    };
    let role_indices = match role {
        Role::Ingestion => RoleIndices::Ingestion(
            ingestion::exports::drowl::plugin::ingestion::GuestIndices::new(&pre)
                .map_err(describe_err)?,
        ),
        Role::Enrichment => RoleIndices::Enrichment(
            enrichment::exports::drowl::plugin::enrichment::GuestIndices::new(&pre)
                .map_err(describe_err)?,
        ),
        Role::Export => RoleIndices::Export(
            export::exports::drowl::plugin::export::GuestIndices::new(&pre)
                .map_err(describe_err)?,
        ),
        Role::Resolution => RoleIndices::Resolution(
            identity::exports::drowl::plugin0_2_0::resolution::GuestIndices::new(&pre)
                .map_err(describe_err)?,
        ),
        Role::Webhook => RoleIndices::Webhook,
    };
    let plugin_pre = PluginPre {
        describe: DescribeIndices::new(&pre).map_err(describe_err)?,
        webhooks: if receives_webhooks {
            Some(WebhooksIndices::new(&pre).map_err(describe_err)?)
        } else {
            None
        },
        schedules: if suggests_schedules {
            Some(SchedulesIndices::new(&pre).map_err(describe_err)?)
        } else {
            None
        },
        role: role_indices,
        pre,
    };

    let slot = match slots {
        Some(s) => s.clone().acquire_owned().await.ok(),
        None => None,
    };
    let describe_failed = |e: super::CallError| match e {
        super::CallError::Timeout(budget) => LoadError::DescribeTimeout {
            name: name.to_owned(),
            budget,
        },
        e => LoadError::Describe {
            name: name.to_owned(),
            message: format!("describe failed: {e}"),
        },
    };
    let mut instance = super::instance::PluginInstance::start(
        engine,
        &plugin_pre,
        &limits.budget,
        describe_state,
        slot,
    )
    .await
    .map_err(describe_failed)?;
    let mut manifest: Manifest = instance.describe().await.map_err(describe_failed)?.into();
    if plugin_pre.webhooks.is_some() {
        let spec = instance.webhook_spec().await.map_err(describe_failed)?;
        manifest.webhook = Some(WebhookSpec::from(spec));
    }
    if plugin_pre.schedules.is_some() {
        let defaults = instance
            .default_schedules()
            .await
            .map_err(describe_failed)?;
        manifest.default_schedules = defaults.into_iter().map(DefaultSchedule::from).collect();
    }
    manifest
        .validate(crate::HOST_VERSION, limits.max_manifest_bytes)
        .map_err(|source| LoadError::Manifest {
            name: name.to_owned(),
            source,
        })?;
    if !manifest
        .capabilities
        .iter()
        .any(|c| role.capabilities().contains(&c.as_str()))
    {
        return Err(LoadError::Manifest {
            name: name.to_owned(),
            source: ManifestError {
                field: "capabilities".into(),
                problem: format!(
                    "the component implements {} but declares none of {}",
                    role.world(),
                    role.capabilities().join(", ")
                ),
            },
        });
    }

    Ok(LoadedPlugin {
        manifest,
        role,
        wit_version,
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len(),
        imports,
        exports,
        pre: plugin_pre,
    })
}
