//! The fuzz corpus at test speed: every committed seed (`fuzz/seeds/TARGET/`) and every
//! crash input kept as a regression (`fuzz/regressions/TARGET/`) goes through the same
//! function its libFuzzer target runs (`tokenusage::dev::fuzzing`), on the stable toolchain.
//! A panic here is a parser bug that fuzzing once found, come back.

use std::fs;
use std::path::{Path, PathBuf};

use tokenusage::dev::fuzzing::{TARGETS, target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files in `fuzz/{kind}/{target}/`, sorted; none when the folder is missing.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// The names of the folders in `fuzz/{kind}/`.
fn folders(kind: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(fuzz_dir().join(kind)) else {
        return Vec::new();
    };
    entries
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn replay(kind: &str) -> usize {
    let mut count = 0;
    for (name, run) in TARGETS {
        for path in inputs(kind, name) {
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panics {name}", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn every_seed_passes_its_fuzz_target() {
    assert!(replay("seeds") > 0, "no seeds found under fuzz/seeds");
}

#[test]
fn every_kept_crash_input_passes_its_fuzz_target() {
    replay("regressions");
}

#[test]
fn every_target_has_seeds_and_every_folder_a_target() {
    for (name, _) in TARGETS {
        assert!(
            !inputs("seeds", name).is_empty(),
            "fuzz/seeds/{name}/ is empty"
        );
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(source.is_file(), "{} is missing", source.display());
    }
    for kind in ["seeds", "regressions"] {
        for folder in folders(kind) {
            assert!(
                target(&folder).is_some(),
                "fuzz/{kind}/{folder}/ names no target"
            );
        }
    }
}

#[test]
fn the_seed_corpus_stays_small() {
    let total: u64 = TARGETS
        .iter()
        .flat_map(|(name, _)| inputs("seeds", name))
        .map(|path| fs::metadata(path).unwrap().len())
        .sum();
    assert!(total < 1024 * 1024, "fuzz/seeds holds {total} bytes");
}
