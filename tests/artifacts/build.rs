//! Builds every plugin component for `wasm32-wasip2` (the `plugin` profile, as `scripts/build-plugins.sh`
//! does), copies them into `OUT_DIR`, and writes the copies' absolute paths as constants
//! into `$OUT_DIR/components.rs`.
//!
//! Each package is built by a cargo invocation of its own so the SDK's role features are
//! not unified across plugins: a component must export only its own world.
//!
//! The inner cargo uses its own target directory, `target/test-plugins`: the outer cargo
//! holds the lock of the profile directory it builds into for as long as this script
//! runs, so building into it would wait for ever. The environment cargo gives a build
//! script describes the *host* build (its rustflags, cfgs, features, clippy as the
//! workspace wrapper); what of it would change or confuse the wasm build is removed.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target every plugin is built for.
const TARGET: &str = "wasm32-wasip2";

/// (cargo package, the constant naming its component, its directory).
const PLUGINS: &[(&str, &str, &str)] = &[
    ("github-plugin", "GITHUB_PLUGIN", "plugins/github"),
    ("feed-plugin", "FEED_PLUGIN", "plugins/feed"),
    ("keywords-plugin", "KEYWORDS_PLUGIN", "plugins/keywords"),
    ("identity-plugin", "IDENTITY_PLUGIN", "plugins/identity"),
    ("export-plugin", "EXPORT_PLUGIN", "plugins/export"),
    ("hostile-plugin", "HOSTILE_PLUGIN", "tests/plugins/hostile"),
    (
        "slow-describe-plugin",
        "SLOW_DESCRIBE_PLUGIN",
        "tests/plugins/slow-describe",
    ),
    (
        "webhook-echo-plugin",
        "WEBHOOK_ECHO_PLUGIN",
        "tests/plugins/webhook-echo",
    ),
];

/// Second builds of a package with a cargo feature on, for tests that need two builds
/// of one plugin (an upgrade while jobs run): (package, feature, the constant naming
/// the component, its file name). Not in `ALL`, which has one component per package.
const VARIANTS: &[(&str, &str, &str, &str)] = &[(
    "hostile-plugin",
    "next-version",
    "HOSTILE_PLUGIN_NEXT",
    "hostile_plugin_next.wasm",
)];

/// What else the components are built from, relative to the workspace root: the SDK with
/// its WIT, and the workspace's manifest and lock file (profiles, dependency versions).
const SHARED_SOURCES: &[&str] = &[
    "sdk/src",
    "sdk/wit",
    // `sdk/wit` is a link to the newest contract, which reads older ones from `wit/`.
    "wit",
    "sdk/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
];

/// Variables cargo sets for build scripts that the inner cargo (or a build script it
/// runs) would read as its own, exactly.
const SCRUBBED: &[&str] = &[
    // The host's flags: `CARGO_ENCODED_RUSTFLAGS` beats every other rustflags source, and
    // host flags (`-C target-cpu=native`, …) do not belong in a wasm build.
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    // `cargo clippy` runs clippy-driver as the workspace wrapper; for the plugins it would
    // lint instead of just compile, and change their fingerprints between clippy and test.
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    // Set by the user for the outer build; the inner one names its own.
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MANIFEST_LINKS",
];

/// Prefixes of variables cargo sets per build script: a stale `CARGO_CFG_UNIX` or
/// `CARGO_FEATURE_STD` of the host would reach the build scripts of the wasm build, which
/// cargo gives fresh values only for what applies to them.
const SCRUBBED_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "DEP_"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("tests/artifacts is two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    for (_, _, dir) in PLUGINS {
        watch(&workspace.join(dir).join("src"));
        watch(&workspace.join(dir).join("Cargo.toml"));
    }
    for path in SHARED_SOURCES {
        watch(&workspace.join(path));
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS");

    require_target();

    let target_dir = target_root(&out_dir).join("test-plugins");
    let mut code = String::new();
    let mut all = String::new();
    for (package, constant, _) in PLUGINS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let wasm = out_dir.join(&file);
        copy_if_changed(&build(&workspace, &target_dir, package, None), &wasm);
        let path = wasm
            .to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", wasm.display()));
        writeln!(
            code,
            "/// The `{package}` component, built for {TARGET} in the `plugin` profile.\npub const {constant}: &str = {path:?};"
        )
        .expect("write to a String");
        writeln!(all, "    ({package:?}, {constant}),").expect("write to a String");
    }
    for (package, feature, constant, file) in VARIANTS {
        let wasm = out_dir.join(file);
        copy_if_changed(
            &build(&workspace, &target_dir, package, Some(feature)),
            &wasm,
        );
        let path = wasm
            .to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", wasm.display()));
        writeln!(
            code,
            "/// The `{package}` component built with feature `{feature}`, for {TARGET} in the `plugin` profile.\npub const {constant}: &str = {path:?};"
        )
        .expect("write to a String");
    }
    write!(
        code,
        "/// Every plugin component: (cargo package, path).\npub const ALL: &[(&str, &str)] = &[\n{all}];\n"
    )
    .expect("write to a String");
    write_if_changed(&out_dir.join("components.rs"), code.as_bytes());
}

/// Builds `package` (with `feature` on, if given) and returns where cargo put its
/// component. Each feature set is a build of its own in cargo's cache, so switching back
/// and forth recompiles nothing; the file cargo puts the component in is the same for
/// every feature set, so it is copied before the next build.
fn build(workspace: &Path, target_dir: &Path, package: &str, feature: Option<&str>) -> PathBuf {
    let mut cmd = inner_cargo(workspace);
    cmd.args([
        "build",
        "--profile",
        "plugin",
        "--target",
        TARGET,
        "--package",
        package,
    ])
    .arg("--target-dir")
    .arg(target_dir);
    if let Some(feature) = feature {
        cmd.args(["--features", feature]);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build {package}: {e}"));
    assert!(
        status.success(),
        "building {package} for {TARGET} failed ({status}); cargo's messages are above"
    );
    let file = format!("{}.wasm", package.replace('-', "_"));
    target_dir.join(TARGET).join("plugin").join(file)
}

/// Copies the component `built` to `to` in `OUT_DIR`. The tests load the copy: it belongs
/// to this run of the script, so deleting `target/test-plugins`, or another profile's
/// build rewriting it, does not pull a component from under them.
fn copy_if_changed(built: &Path, to: &Path) {
    let bytes =
        std::fs::read(built).unwrap_or_else(|e| panic!("{} after its build: {e}", built.display()));
    write_if_changed(to, &bytes);
}

/// Writes `bytes` to `path` unless it holds them already, so an unchanged file keeps its
/// modification time and cargo rebuilds nothing that includes it.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Reruns this script when `path` (a file, or any file under a directory) changes.
fn watch(path: &Path) {
    assert!(path.exists(), "{} is missing", path.display());
    println!("cargo:rerun-if-changed={}", path.display());
}

/// Panics with the command that fixes it unless the toolchain has the wasm target.
fn require_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", rustc.to_string_lossy()));
    let libdir = String::from_utf8_lossy(&out.stdout);
    let libdir = Path::new(libdir.trim());
    assert!(
        out.status.success() && libdir.is_dir(),
        "the {TARGET} target is not installed for this toolchain; the test plugins need it:\n\n    rustup target add {TARGET}\n"
    );
}

/// The outer cargo's target directory: the ancestor of `OUT_DIR` that cargo tagged with
/// `CACHEDIR.TAG` (`target/`, wherever `--target-dir` or `CARGO_TARGET_DIR` put it).
/// Falls back to `OUT_DIR` itself, which only costs a rebuild per profile.
fn target_root(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(out_dir)
        .to_path_buf()
}

/// The cargo running this script (same toolchain), in the workspace root, with the
/// variables that describe the host build removed. `CARGO_MAKEFLAGS` stays: it hands the
/// inner cargo the outer one's jobserver, so together they run no more jobs than `-j`.
/// `RUSTC` and `RUSTC_WRAPPER` stay too: the same compiler, through the same cache.
fn inner_cargo(workspace: &Path) -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if SCRUBBED.contains(&key) || SCRUBBED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key);
        }
    }
    // Cargo reads a build script's stdout as instructions: the inner cargo's goes to stderr.
    cmd.stdout(Stdio::from(std::io::stderr()));
    cmd
}
