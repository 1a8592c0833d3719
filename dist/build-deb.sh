#!/usr/bin/env bash
# Builds the Debian package: the release binary, its man page (generated from the
# command-line definitions: `tokenusage man`), then `cargo deb` with the assets listed in
# Cargo.toml's [package.metadata.deb]. Prints lintian's verdict when lintian is there.
# Needs cargo-deb (`cargo install cargo-deb --locked`, which .ci/install does).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
mkdir -p target/man
target/release/tokenusage man | gzip -9n >target/man/tokenusage.1.gz
cargo deb --no-build --locked
deb=$(ls -t target/debian/tokenusage_*.deb | head -n 1)
echo "built $deb"
if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 "$deb" || true
fi
