//! The Debian package (`bash dist/build-deb.sh`, which `bash .ci/run` runs before the
//! tests) holds what an admin installs, and lintian finds no error in it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest package `cargo deb` wrote.
fn package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    debs.retain(|p| p.extension().is_some_and(|e| e == "deb"));
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().unwrap_or_else(|| {
        panic!(
            "no package in {}: build it with `bash dist/build-deb.sh` (bash .ci/run does)",
            dir.display()
        )
    })
}

#[test]
fn the_debian_package_holds_the_binary_man_page_units_snippets_and_readme() {
    let deb = package();
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/bin/tokenusage",
        "./usr/share/man/man1/tokenusage.1.gz",
        "./lib/systemd/system/tokenusage.socket",
        "./lib/systemd/system/tokenusage.service",
        "./lib/systemd/system/tokenusage-notify.service",
        "./lib/systemd/system/tokenusage-notify.timer",
        "./usr/share/doc/tokenusage/examples/nginx/tokenusage.conf",
        "./usr/share/doc/tokenusage/examples/apache/tokenusage-fcgi.conf",
        "./usr/share/doc/tokenusage/examples/apache/tokenusage-cgi.conf",
        "./usr/share/doc/tokenusage/README.md",
        "./usr/share/doc/tokenusage/copyright",
    ] {
        assert!(
            listing.lines().any(|line| line.ends_with(path)),
            "{path} is not in the package:\n{listing}"
        );
    }
    let fields = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .output()
        .unwrap();
    let fields = String::from_utf8_lossy(&fields.stdout);
    assert!(fields.contains("Package: tokenusage"), "{fields}");
    assert!(fields.contains("Section: web"), "{fields}");
}

#[test]
fn lintian_finds_no_error_in_the_package() {
    let deb = package();
    let lintian = Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .arg(&deb)
        .output()
        .expect("lintian is not installed: run `sudo bash .ci/install`");
    let report = String::from_utf8_lossy(&lintian.stdout);
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian:\n{report}");
}
