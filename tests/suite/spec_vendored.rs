//! The spec is vendored in `docs/spec/` so that the repository builds, tests and benches on
//! its own. Where the shared copy still sits beside the checkout (`../shared/spec/`), the two
//! must be the same files, byte for byte: a change to the spec is copied here, and reviewed,
//! in the same commit as the code that follows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files every test and bench reads from `docs/spec/`.
const EXPECTED: [&str; 6] = [
    "POLICY.md",
    "contract.graphql",
    "matrix.csv",
    "workloads/client_app.graphql",
    "workloads/coach_dashboard.graphql",
    "workloads/exec_report.graphql",
];

fn vendored_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/spec")
}

fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join("shared/spec");
    dir.is_dir().then_some(dir)
}

/// Every file under `root` (recursively): path relative to `root`, with `/` -> contents.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let relative = path.strip_prefix(root).expect("under root");
            let name = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.insert(name, bytes);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn docs_spec_has_every_spec_file() {
    let vendored = files(&vendored_dir());
    for name in EXPECTED {
        let bytes = vendored.get(name).unwrap_or_else(|| panic!("docs/spec/{name} is missing"));
        assert!(!bytes.is_empty(), "docs/spec/{name} is empty");
        assert!(std::str::from_utf8(bytes).is_ok(), "docs/spec/{name} is not UTF-8");
    }
    let matrix = String::from_utf8_lossy(&vendored["matrix.csv"]).into_owned();
    assert!(
        matrix.starts_with("resource,coachee,coach,program_admin,executive,ai_agent,system_admin"),
        "docs/spec/matrix.csv does not start with the matrix header"
    );
}

#[test]
fn docs_spec_is_a_byte_identical_copy_of_the_shared_spec() {
    let vendored = files(&vendored_dir());
    // The vendored copy stands alone: without the shared copy there is nothing to compare,
    // but the files the suite reads must still be there.
    for name in EXPECTED {
        assert!(vendored.contains_key(name), "docs/spec/{name} is missing");
    }
    let Some(shared_dir) = shared_dir() else {
        eprintln!("../shared/spec is absent: checked docs/spec on its own");
        return;
    };
    let shared = files(&shared_dir);
    let only_shared: Vec<&String> = shared.keys().filter(|k| !vendored.contains_key(*k)).collect();
    let only_vendored: Vec<&String> = vendored.keys().filter(|k| !shared.contains_key(*k)).collect();
    assert!(only_shared.is_empty(), "in {} but not in docs/spec (copy them): {only_shared:?}", shared_dir.display());
    assert!(
        only_vendored.is_empty(),
        "in docs/spec but not in {} (remove them): {only_vendored:?}",
        shared_dir.display()
    );
    let differing: Vec<&String> = shared.iter().filter(|(k, v)| vendored.get(*k) != Some(*v)).map(|(k, _)| k).collect();
    assert!(
        differing.is_empty(),
        "docs/spec differs from {} in {differing:?}: copy the shared spec over docs/spec and review the diff",
        shared_dir.display()
    );
}
