//! The installation's secret: 32 random bytes in `ct/dat/.tokenusage_secret` (mode 0600,
//! ours alone), the key of every HMAC we make. CSRF tokens are bound to the admin's
//! session with it, and stored answers to the credentials, so nothing we write or send
//! can be checked offline against a guess of the license key.
//!
//! Made once (the first request of an installation with a config), then read; a file
//! every process of the installation shares, because a CGI process keeps nothing between
//! requests. Performs file I/O.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::hmac;

/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;

/// The secret's file in `ct/dat`.
pub fn secret_file(dat: &Path) -> PathBuf {
    dat.join(".tokenusage_secret")
}

/// An HMAC-SHA256 key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Secret {
    key: hmac::Key,
    /// The bytes, only to compare two secrets.
    bytes: [u8; SECRET_BYTES],
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Secret {
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Secret {
        Secret {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            bytes,
        }
    }

    /// A secret for this process only: where the installation's cannot be kept.
    pub fn random() -> Secret {
        Secret::from_bytes(rand::random())
    }

    /// The installation's secret from `dat`, made on first use. When the folder cannot
    /// hold it (read-only), a secret for this process only, with the reason in the log:
    /// CSRF tokens and the stored answers' owner then change with each process.
    pub fn of_installation(dat: &Path) -> Secret {
        let file = secret_file(dat);
        load_or_create(&file).unwrap_or_else(|error| {
            eprintln!(
                "tokenusage: {}: {error}; using a secret for this process only",
                file.display()
            );
            Secret::random()
        })
    }

    /// HMAC-SHA256 of the parts (each ended by a NUL, so `("ab", "c")` differs from
    /// `("a", "bc")`), as 64 lowercase hex digits; `purpose` keeps the uses apart.
    pub fn sign(&self, purpose: &str, parts: &[&str]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(purpose.as_bytes());
        for part in parts {
            context.update(b"\0");
            context.update(part.as_bytes());
        }
        crate::data::digest::hex(context.sign().as_ref())
    }
}

/// Reads the secret, or makes it: written to a private temporary file, then linked into
/// place, so two processes starting at once agree on one secret and none reads half a
/// file.
fn load_or_create(file: &Path) -> io::Result<Secret> {
    match read(file) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".tokenusage_secret.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let bytes: [u8; SECRET_BYTES] = rand::random();
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)
        .and_then(|mut out| out.write_all(&bytes));
    // A link fails when the file exists: another process made it first, and its wins.
    let linked = written.and_then(|()| fs::hard_link(&temp, file));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(Secret::from_bytes(bytes)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => read(file),
        Err(error) => Err(error),
    }
}

/// The secret in `file`: exactly its bytes, in a regular file of ours that nobody else
/// can read (one that others could read is no secret, and is refused).
fn read(file: &Path) -> io::Result<Secret> {
    let mut opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(file)?;
    let meta = opened.metadata()?;
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(
            "not a private regular file (it must be mode 0600; remove it to make a new one)",
        ));
    }
    let mut bytes = [0; SECRET_BYTES];
    opened.read_exact(&mut bytes)?;
    let mut rest = [0; 1];
    if opened.read(&mut rest)? != 0 {
        return Err(io::Error::other("longer than a secret"));
    }
    Ok(Secret::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh folder, removed when the guard drops (also when the test fails).
    fn temp_dat(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("tokenusage-secret-{name}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn the_secret_is_made_once_private_and_read_back() {
        let tmp = temp_dat("once");
        let dat = tmp.path();
        let first = Secret::of_installation(dat);
        let file = secret_file(dat);
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Secret::of_installation(dat), first);
        assert_eq!(fs::read_dir(dat).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn a_secret_others_can_read_is_refused() {
        let tmp = temp_dat("public");
        let dat = tmp.path();
        let file = secret_file(dat);
        fs::write(&file, [7u8; SECRET_BYTES]).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&file).is_err());
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_or_create(&file).unwrap(),
            Secret::from_bytes([7; SECRET_BYTES])
        );
    }

    #[test]
    fn signatures_differ_by_secret_purpose_and_part_boundaries() {
        let a = Secret::from_bytes([1; SECRET_BYTES]);
        let b = Secret::from_bytes([2; SECRET_BYTES]);
        let signed = a.sign("csrf", &["ab", "c"]);
        assert_eq!(signed.len(), 64);
        assert_eq!(signed, a.sign("csrf", &["ab", "c"]));
        assert_ne!(signed, a.sign("csrf", &["a", "bc"]));
        assert_ne!(signed, a.sign("owner", &["ab", "c"]));
        assert_ne!(signed, b.sign("csrf", &["ab", "c"]));
    }
}
