//! The layering of `lib.rs`, checked: every `crate::<module>` a source file names must be
//! a module its layer may use, and SQL stays below `graphql`. A new upward import fails
//! this test instead of slowly bending the architecture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module -> the modules it may name. `cli` (the command line) and the crate root may name
/// anything.
const MAY_USE: &[(&str, &[&str])] = &[
    ("kinds", &[]),
    ("telemetry", &[]),
    ("clock", &[]),
    ("error", &["kinds", "telemetry"]),
    ("config", &["error", "kinds"]),
    ("authz", &["kinds"]),
    ("db", &["error", "kinds", "telemetry"]),
    ("ctx", &["authz", "clock", "db", "error", "kinds", "telemetry"]),
    ("domain", &["authz", "clock", "config", "ctx", "db", "error", "identity", "kinds", "telemetry"]),
    ("identity", &["authz", "clock", "config", "ctx", "db", "domain", "error", "kinds", "telemetry"]),
    ("ops", &["authz", "clock", "config", "ctx", "db", "domain", "error", "identity", "kinds"]),
    ("seed", &["clock", "config", "db", "domain", "error", "identity", "kinds"]),
    ("graphql", &["authz", "clock", "ctx", "db", "domain", "error", "identity", "kinds", "telemetry"]),
    ("app", &["clock", "config", "db", "domain", "error", "graphql", "identity", "kinds", "telemetry"]),
    (
        "http",
        &["app", "clock", "config", "ctx", "domain", "error", "graphql", "identity", "kinds", "seed", "telemetry"],
    ),
];

/// Modules that run no SQL and build no query: they reach data through `domain`.
const NO_SQL: &[&str] = &["ctx", "graphql", "http", "app"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module of a file under `src/`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The modules a line of code names as `crate::<module>` (comments excluded).
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .collect()
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = MAY_USE.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        if matches!(module.as_str(), "lib" | "main" | "cli" | "layering") {
            continue;
        }
        let Some(may) = allowed.get(module.as_str()) else {
            found.push(format!("{}: module `{module}` has no layer in MAY_USE", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", file.strip_prefix(&src).unwrap_or(&file).display(), n + 1);
            for used in named_modules(line) {
                if used != module && !may.contains(&used.as_str()) {
                    found.push(format!("{at}: `{module}` may not use `crate::{used}`"));
                }
            }
            let code = line.split("//").next().unwrap_or("");
            if NO_SQL.contains(&module.as_str()) && (code.contains("sea_orm") || code.contains(".conn()")) {
                found.push(format!("{at}: `{module}` runs no SQL; data comes through `domain`"));
            }
            if module == "graphql" && code.contains("crate::db::") && !code.contains("crate::db::entities") {
                found.push(format!("{at}: `graphql` may name row types (`db::entities`), nothing else of `db`"));
            }
        }
    }
    found
}

#[test]
fn every_import_points_down_the_layers() {
    let found = violations();
    assert!(found.is_empty(), "layering violations:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(named_modules("use crate::graphql::schema; // crate::http"), vec!["graphql".to_owned()]);
    let may_db: &[&str] = MAY_USE.iter().find(|(m, _)| *m == "db").map(|(_, u)| *u).expect("db");
    assert!(!may_db.contains(&"domain"), "db sits below domain");
}
