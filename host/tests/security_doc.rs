//! SECURITY.md cannot rot: it lists every row of the security review's matrix (issue #10,
//! rows 1 to 32), and every test it cites as `path/to/file.rs::test_name` (or
//! `file.rs::tests::test_name` for a unit test) still exists as a `fn test_name` in that
//! file. A renamed, moved or deleted test fails here until the document follows it.
//!
//! A row whose test cell is exactly `(in progress)` is being implemented on another
//! branch and cites nothing yet. A row that cites no test must say so in words ("No test"
//! or "does not apply"), so an emptied cell cannot pass for a covered one.
//!
//! A plain text check: the document is a Markdown table, one row per line, and a citation
//! is a workspace-relative path ending in `.rs` followed by `::` segments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

/// The rows the matrix has.
const ROWS: std::ops::RangeInclusive<u32> = 1..=32;

/// What a test cell says while its row is implemented elsewhere.
const IN_PROGRESS: &str = "(in progress)";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// A test the document cites: the file, the modules inside it, the function.
#[derive(Debug, PartialEq, Eq)]
struct Citation {
    file: String,
    modules: Vec<String>,
    name: String,
}

impl std::fmt::Display for Citation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        for m in &self.modules {
            write!(f, "::{m}")?;
        }
        write!(f, "::{}", self.name)
    }
}

/// Every `file.rs::module::name` in `text`.
fn citations(text: &str) -> Vec<Citation> {
    let re = Regex::new(r"([A-Za-z0-9_./-]+\.rs)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
        .expect("citation pattern");
    re.captures_iter(text)
        .map(|c| {
            let mut path: Vec<String> = c[2]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let name = path.pop().expect("at least one segment");
            Citation {
                file: c[1].to_owned(),
                modules: path,
                name,
            }
        })
        .collect()
}

/// The table rows of the document: row number to test cell (the last cell). Rows that
/// appear twice are reported in the second value.
fn rows(doc: &str) -> (BTreeMap<u32, String>, Vec<u32>) {
    let mut found = BTreeMap::new();
    let mut twice = Vec::new();
    for line in doc.lines() {
        let Some(inner) = line.trim().strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = inner.trim_end_matches('|').split('|').collect();
        let Ok(row) = cells[0].trim().parse::<u32>() else {
            continue; // the header and the separator line
        };
        let test = cells.last().map_or("", |c| c.trim()).to_owned();
        if found.insert(row, test).is_some() {
            twice.push(row);
        }
    }
    (found, twice)
}

/// Everything wrong with `doc`, read against the files under `root`.
fn problems(doc: &str, root: &Path) -> Vec<String> {
    let (rows, twice) = rows(doc);
    let mut out: Vec<String> = twice
        .into_iter()
        .map(|r| format!("row {r} appears more than once"))
        .collect();
    for r in ROWS {
        if !rows.contains_key(&r) {
            out.push(format!("row {r} is missing"));
        }
    }
    for (row, cell) in &rows {
        if !ROWS.contains(row) {
            out.push(format!("row {row} is not a row of the matrix"));
        }
        if cell == IN_PROGRESS {
            continue;
        }
        let cited = citations(cell);
        let lower = cell.to_lowercase();
        if cited.is_empty() && !lower.contains("no test") && !lower.contains("does not apply") {
            out.push(format!(
                "row {row} cites no test and does not say why (\"No test ...\" or \"does not apply\")"
            ));
        }
        for c in cited {
            let Ok(source) = std::fs::read_to_string(root.join(&c.file)) else {
                out.push(format!("row {row}: {c}: no file {}", c.file));
                continue;
            };
            if !source.contains(&format!("fn {}(", c.name)) {
                out.push(format!("row {row}: {c}: no `fn {}` in {}", c.name, c.file));
            }
            for m in &c.modules {
                if !source.contains(&format!("mod {m} ")) && !source.contains(&format!("mod {m};"))
                {
                    out.push(format!("row {row}: {c}: no `mod {m}` in {}", c.file));
                }
            }
        }
    }
    out
}

#[test]
fn security_md_lists_every_row_and_cites_only_tests_that_exist() {
    let root = workspace_root();
    let doc = std::fs::read_to_string(root.join("SECURITY.md")).expect("SECURITY.md");
    let found = problems(&doc, &root);
    assert!(found.is_empty(), "SECURITY.md:\n{}", found.join("\n"));
    // The check is not vacuous: the document cites tests, most rows among them.
    let (rows, _) = rows(&doc);
    let citing = rows.values().filter(|c| !citations(c).is_empty()).count();
    assert!(citing >= 24, "only {citing} rows cite a test");
}

/// The checker itself: it finds missing and repeated rows, a cell that neither cites nor
/// explains, a test that is gone, a file that is gone and a unit-test module that is not
/// there; it accepts `(in progress)` and a cell that says why nothing tests it.
#[test]
fn the_checker_finds_missing_rows_and_dangling_citations() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("t")).expect("mkdir");
    std::fs::write(
        dir.path().join("t/a.rs"),
        "#[test]\nfn real_test() {}\nmod tests {\n    async fn unit_test() {}\n}\n",
    )
    .expect("write");
    let mut doc = String::from("| row | threat | defence | test |\n|---|---|---|---|\n");
    for r in ROWS.filter(|r| ![2, 3, 4, 5, 6, 7].contains(r)) {
        doc.push_str(&format!("| {r} | x | y | `t/a.rs::real_test` |\n"));
    }
    doc.push_str("| 2 | x | y | (in progress) |\n");
    doc.push_str("| 3 | x | y | No test: nothing can fault here. |\n");
    doc.push_str("| 4 | x | y | `t/a.rs::gone`, `t/b.rs::real_test` |\n");
    doc.push_str("| 5 | x | y | `t/a.rs::tests::unit_test`, `t/a.rs::other::unit_test` |\n");
    doc.push_str("| 6 | x | y | covered, trust me |\n");
    doc.push_str("| 1 | x | y | `t/a.rs::real_test` |\n");
    assert_eq!(
        problems(&doc, dir.path()),
        [
            "row 1 appears more than once",
            "row 7 is missing",
            "row 4: t/a.rs::gone: no `fn gone` in t/a.rs",
            "row 4: t/b.rs::real_test: no file t/b.rs",
            "row 5: t/a.rs::other::unit_test: no `mod other` in t/a.rs",
            "row 6 cites no test and does not say why (\"No test ...\" or \"does not apply\")",
        ]
    );
    assert_eq!(
        citations("`host/tests/all/sandbox.rs::a_b`, host/src/x.rs::tests::c_d."),
        [
            Citation {
                file: "host/tests/all/sandbox.rs".into(),
                modules: vec![],
                name: "a_b".into()
            },
            Citation {
                file: "host/src/x.rs".into(),
                modules: vec!["tests".into()],
                name: "c_d".into()
            },
        ]
    );
}
