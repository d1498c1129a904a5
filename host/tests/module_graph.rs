//! The module graph of `host/src` goes one way:
//!
//! ```text
//! main → cli → config → http → queue → jobs → capabilities → runtime → storage → leaves
//! ```
//!
//! where the leaves (`bindings`, `manifest`, `ids`, `policy`, `redact`) import no other
//! module of the crate but each other. This test reads every source file and fails,
//! naming the file and the line, when a module names one above it through `crate::`.
//! It is what keeps later changes from growing the cycles back.

use std::path::{Path, PathBuf};

/// Each top-level module's layer; a module may only name modules of a lower layer (or
/// its own).
const LAYERS: &[(&str, u8)] = &[
    ("bindings", 0),
    ("manifest", 0),
    ("ids", 0),
    ("policy", 0),
    ("redact", 0),
    ("storage", 1),
    ("runtime", 2),
    ("capabilities", 3),
    ("jobs", 4),
    ("queue", 5),
    ("http", 6),
    ("config", 7),
    ("cli", 8),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a line names through `crate::`, including grouped imports such as
/// `use crate::{a::X, b::Y}`.
fn named_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
        rest = after;
    }
    found
}

#[test]
fn imports_only_go_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(own) = layer(&top) else {
            // lib.rs and main.rs sit above everything.
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for module in named_modules(code) {
                if let Some(theirs) = layer(&module)
                    && theirs > own
                {
                    violations.push(format!(
                        "{}:{}: `{top}` names `crate::{module}`, which is above it",
                        rel.display(),
                        n + 1
                    ));
                }
                if own == 0 && module != top && layer(&module).is_some_and(|l| l > 0) {
                    violations.push(format!(
                        "{}:{}: leaf `{top}` names `crate::{module}`",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the module graph has upward imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.trim().strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(
                layer(name).is_some(),
                "module `{name}` is not placed in the layers of tests/module_graph.rs"
            );
        }
    }
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    assert_eq!(named_modules("use crate::jobs::X;"), ["jobs"]);
    assert_eq!(
        named_modules("use crate::{runtime::A, storage::B};"),
        ["runtime", "storage"]
    );
    assert_eq!(
        named_modules("let x = crate::queue::f(crate::http::g());"),
        ["queue", "http"]
    );
}
