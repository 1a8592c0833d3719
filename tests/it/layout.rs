//! The README's Layout is the true tree: a newcomer's map names every file under `src/`,
//! and nothing that is not there.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, as paths relative to `root` with `/` between parts.
fn rust_files(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap();
            found.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The first word of each line of the README's Layout block that names a `.rs` file.
fn named_in_layout(readme: &str) -> BTreeSet<String> {
    let layout = readme
        .split("\n## Layout")
        .nth(1)
        .expect("the README has a Layout section");
    let block = layout
        .split("```")
        .nth(1)
        .expect("the Layout section has a code block");
    block
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.ends_with(".rs"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_layout_names_every_file_under_src_and_no_other() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(manifest.join("README.md")).unwrap();
    let named = named_in_layout(&readme);
    let src = manifest.join("src");
    let mut present = BTreeSet::new();
    rust_files(&manifest, &src, &mut present);
    let missing: Vec<_> = present.difference(&named).collect();
    let stale: Vec<_> = named.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "not in the README's Layout: {missing:?}"
    );
    assert!(stale.is_empty(), "in the Layout but not in src/: {stale:?}");
}
