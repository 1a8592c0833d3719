//! Read-only access to the session files PHP's `files` save handler keeps, to learn
//! whether a browser's session belongs to a logged-in admin without running PHP.
//!
//! I/O: opens one session file read-only (`O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`, and
//! `O_NOATIME` where allowed), `fstat`s the open descriptor, waits for a shared `flock`
//! (sleeping in short steps, up to a time limit) so it never reads a file PHP is halfway
//! through writing, and reads at most [`MAX_SESSION_BYTES`]. It never writes, creates,
//! truncates or touches a file; the contents are parsed by [`crate::php::session`].
//!
//! Deny by default: every doubt is a [`Refusal`], and the caller treats anything but a
//! parsed [`Session`] as "not logged in". A refusal's text is safe for logs: it never
//! holds the session id, the path or the file's contents.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::php::session::{Session, SessionError, parse_session};

/// PHP's default `session.gc_maxlifetime`.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(1440);

/// How long [`SessionStore::read`] waits for PHP to release a session by default: PHP
/// holds its lock for a whole request, and a worker waiting longer (2 s, once) let 64
/// requests on a locked session make real admins wait 7 s.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_millis(250);

/// Larger session files are refused unread: a login session is a few hundred bytes.
pub const MAX_SESSION_BYTES: u64 = 1 << 20;

/// PHP's `PS_MAX_SID_LENGTH`.
const MAX_SESSION_ID_LEN: usize = 256;

/// The pause between two attempts at the shared lock.
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// Where the session files are, from PHP's `session.save_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavePath {
    /// How many levels of one-character subfolders hold the files (the `N` of `N;/path`).
    pub depth: usize,
    /// The folder itself.
    pub dir: PathBuf,
}

/// Why a `session.save_path` is not one we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavePathError {
    Empty,
    DepthTooLarge(String),
    DepthNotANumber(String),
    Mode(String),
    NoFolder,
    NotAbsolute(PathBuf),
}

impl fmt::Display for SavePathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SavePathError::Empty => f.write_str("session.save_path is empty"),
            SavePathError::DepthTooLarge(d) => {
                write!(f, "session.save_path depth {d:?} is too large")
            }
            SavePathError::DepthNotANumber(d) => {
                write!(f, "session.save_path depth {d:?} is not a number")
            }
            SavePathError::Mode(mode) => {
                write!(f, "session.save_path mode {mode:?} is not an octal mode")
            }
            SavePathError::NoFolder => f.write_str("session.save_path names no folder"),
            SavePathError::NotAbsolute(dir) => write!(
                f,
                "session.save_path {:?} is not an absolute path",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for SavePathError {}

impl SavePath {
    /// Reads PHP's three forms: `/path`, `N;/path` and `N;MODE;/path`. As in PHP, only the
    /// first two `;` separate fields, so the path may hold more. Stricter than PHP: `N` must
    /// be decimal digits, `MODE` octal digits up to `7777`, and the path absolute (we do not
    /// run in PHP's working folder); an empty path, which PHP would replace with the system
    /// temp folder, is refused so the folder is always said explicitly.
    pub fn parse(text: &str) -> Result<SavePath, SavePathError> {
        let fields: Vec<&str> = text.splitn(3, ';').collect();
        let (depth, mode, dir) = match fields[..] {
            [dir] => (None, None, dir),
            [depth, dir] => (Some(depth), None, dir),
            [depth, mode, dir] => (Some(depth), Some(mode), dir),
            _ => return Err(SavePathError::Empty),
        };
        let depth = match depth.map(str::trim) {
            None => 0,
            Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => d
                .parse()
                .map_err(|_| SavePathError::DepthTooLarge(d.to_string()))?,
            Some(d) => return Err(SavePathError::DepthNotANumber(d.to_string())),
        };
        if let Some(mode) = mode.map(str::trim) {
            let octal = !mode.is_empty() && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
            if !octal || u32::from_str_radix(mode, 8).map_or(true, |m| m > 0o7777) {
                return Err(SavePathError::Mode(mode.to_string()));
            }
        }
        if dir.is_empty() {
            return Err(SavePathError::NoFolder);
        }
        let dir = PathBuf::from(dir);
        if !dir.is_absolute() {
            return Err(SavePathError::NotAbsolute(dir));
        }
        Ok(SavePath { depth, dir })
    }

    /// The file PHP's `files` handler keeps session `id` in: `dir/sess_ID`, or with depth
    /// N, `dir/c1/.../cN/sess_ID` from the id's first N characters. `None` for an id PHP
    /// refuses ([`valid_session_id`]) or one not longer than the depth, as in PHP; the id
    /// is checked before any path is built.
    pub fn file_for(&self, id: &str) -> Option<PathBuf> {
        if !valid_session_id(id) || id.len() <= self.depth {
            return None;
        }
        let mut path = self.dir.clone();
        // The id is ASCII, so byte slices are characters.
        for i in 0..self.depth {
            path.push(&id[i..=i]);
        }
        path.push(format!("sess_{id}"));
        Some(path)
    }
}

/// PHP's rule for session ids: 1 to 256 characters from `A-Z a-z 0-9 , -`. Nothing else
/// (no `/`, no `.`) can reach a path.
pub fn valid_session_id(id: &str) -> bool {
    (1..=MAX_SESSION_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'-')
}

/// Reads sessions from one save path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStore {
    pub save_path: SavePath,
    /// PHP's `session.gc_maxlifetime`: a file not written for longer is garbage to PHP's
    /// collector, and refused here.
    pub max_lifetime: Duration,
    /// How long to wait while PHP holds the session locked.
    pub lock_timeout: Duration,
}

/// Why a session was not read. Its `Display` is safe for logs: no id, path or contents.
#[derive(Debug)]
pub enum Refusal {
    /// No such session file: the ordinary "not logged in".
    Missing,
    /// The id breaks PHP's rules ([`valid_session_id`]).
    BadId,
    /// The id is not longer than the save path's depth, which PHP refuses too.
    IdTooShort,
    /// The file is a symbolic link: never followed.
    Symlink,
    /// Not a regular file (a folder, a FIFO...).
    NotAFile,
    /// Owned by another user than ours: in the shared, sticky session folder, anyone can
    /// create a file, so only our own are trusted.
    Foreign { owner: u32 },
    /// Not written for longer than the lifetime: PHP's collector would delete it.
    Expired { age: Duration },
    /// Larger than [`MAX_SESSION_BYTES`].
    TooLarge { size: u64 },
    /// PHP kept the session locked for the whole time limit.
    Locked { waited: Duration },
    /// The file could not be opened, examined or read.
    Io(io::Error),
    /// The contents are not a session PHP could read.
    Malformed(SessionError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("no session file"),
            Refusal::BadId => f.write_str("session id has a character or length PHP refuses"),
            Refusal::IdTooShort => {
                f.write_str("session id is not longer than the save path's folder depth")
            }
            Refusal::Symlink => f.write_str("session file is a symbolic link"),
            Refusal::NotAFile => f.write_str("session file is not a regular file"),
            Refusal::Foreign { owner } => {
                write!(
                    f,
                    "session file belongs to uid {owner}, not to this process"
                )
            }
            Refusal::Expired { age } => {
                write!(f, "session expired: last written {} s ago", age.as_secs())
            }
            Refusal::TooLarge { size } => write!(
                f,
                "session file is {size} bytes, more than the {MAX_SESSION_BYTES} allowed"
            ),
            Refusal::Locked { waited } => write!(
                f,
                "session stayed locked by another request for {} ms",
                waited.as_millis()
            ),
            Refusal::Io(error) => write!(f, "cannot read the session file: {error}"),
            Refusal::Malformed(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Refusal::Io(error) => Some(error),
            Refusal::Malformed(error) => Some(error),
            _ => None,
        }
    }
}

/// Which checks apply beyond the ones every read makes.
struct Checks {
    /// Our euid, when the file must be ours.
    owner: Option<u32>,
    /// `now` and the lifetime, when an old file is expired.
    expiry: Option<(SystemTime, Duration)>,
    lock_timeout: Duration,
}

impl SessionStore {
    /// A store with PHP's default lifetime and a 2-second lock timeout.
    pub fn new(save_path: SavePath) -> SessionStore {
        SessionStore {
            save_path,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Reads session `id` as of `now`. Refused unless the id is valid, the file is a
    /// regular file (not a symlink), owned by our effective uid, written within
    /// `max_lifetime`, unlocked within `lock_timeout`, at most [`MAX_SESSION_BYTES`] and
    /// well-formed.
    pub fn read(&self, id: &str, now: SystemTime) -> Result<Session, Refusal> {
        if !valid_session_id(id) {
            return Err(Refusal::BadId);
        }
        let path = self.save_path.file_for(id).ok_or(Refusal::IdTooShort)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        read_checked(
            &path,
            &Checks {
                owner: Some(euid),
                expiry: Some((now, self.max_lifetime)),
                lock_timeout: self.lock_timeout,
            },
        )
    }
}

/// Reads a session file named by path, for an admin inspecting it: the checks of
/// [`SessionStore::read`] except the owner and the age.
pub fn read_path(path: &Path) -> Result<Session, Refusal> {
    read_checked(
        path,
        &Checks {
            owner: None,
            expiry: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        },
    )
}

fn read_checked(path: &Path, checks: &Checks) -> Result<Session, Refusal> {
    let file = open_read_only(path)?;
    let metadata = file.metadata().map_err(Refusal::Io)?;
    if !metadata.file_type().is_file() {
        return Err(Refusal::NotAFile);
    }
    if checks.owner.is_some_and(|euid| metadata.uid() != euid) {
        return Err(Refusal::Foreign {
            owner: metadata.uid(),
        });
    }
    lock_shared(&file, checks.lock_timeout)?;
    // Examined again under the lock: PHP may have rewritten the file while we waited.
    let metadata = file.metadata().map_err(Refusal::Io)?;
    if let Some((now, lifetime)) = checks.expiry {
        check_age(&metadata, now, lifetime)?;
    }
    if metadata.len() > MAX_SESSION_BYTES {
        return Err(Refusal::TooLarge {
            size: metadata.len(),
        });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // One byte more than allowed, to notice a file that grew past the limit anyway.
    (&file)
        .take(MAX_SESSION_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Refusal::Io)?;
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        return Err(Refusal::TooLarge {
            size: bytes.len() as u64,
        });
    }
    // The shared lock goes with the descriptor when `file` is dropped on return.
    parse_session(&bytes).map_err(Refusal::Malformed)
}

/// Opens without following a final symlink, without blocking on a FIFO, without leaking
/// the descriptor to children, and without updating the access time where the kernel
/// lets us.
fn open_read_only(path: &Path) -> Result<File, Refusal> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let open = |extra: i32| {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags | extra)
            .open(path)
    };
    // O_NOATIME is only allowed to the file's owner (or root): retry without it.
    let opened = match open(NOATIME) {
        Err(error) if NOATIME != 0 && error.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    };
    opened.map_err(|error| match error.raw_os_error() {
        Some(libc::ENOENT) => Refusal::Missing,
        // What O_NOFOLLOW answers for a symlink.
        Some(libc::ELOOP) => Refusal::Symlink,
        _ => Refusal::Io(error),
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const NOATIME: i32 = libc::O_NOATIME;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NOATIME: i32 = 0;

/// Takes a shared `flock`, retrying while PHP holds its exclusive one (it does for the
/// whole of a request that started the session), up to `timeout`.
fn lock_shared(file: &File, timeout: Duration) -> Result<(), Refusal> {
    let start = Instant::now();
    loop {
        // SAFETY: flock on a descriptor `file` owns; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => {}
            Some(libc::EINTR) => continue,
            _ => return Err(Refusal::Io(error)),
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Refusal::Locked { waited });
        }
        thread::sleep(LOCK_RETRY.min(timeout - waited));
    }
}

/// PHP's collector deletes files whose mtime is older than `now - lifetime`. A file
/// written "in the future" (clock changes) counts as fresh.
fn check_age(metadata: &Metadata, now: SystemTime, lifetime: Duration) -> Result<(), Refusal> {
    let modified = metadata.modified().map_err(Refusal::Io)?;
    let age = now.duration_since(modified).unwrap_or_default();
    if age > lifetime {
        return Err(Refusal::Expired { age });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_path_reads_phps_three_forms() {
        assert_eq!(
            SavePath::parse("/var/lib/php/sessions"),
            Ok(SavePath {
                depth: 0,
                dir: "/var/lib/php/sessions".into()
            })
        );
        assert_eq!(
            SavePath::parse("2;/var/lib/php/sessions"),
            Ok(SavePath {
                depth: 2,
                dir: "/var/lib/php/sessions".into()
            })
        );
        assert_eq!(
            SavePath::parse("3;0600;/srv/sess"),
            Ok(SavePath {
                depth: 3,
                dir: "/srv/sess".into()
            })
        );
        // Only the first two `;` separate fields.
        assert_eq!(
            SavePath::parse("1;700;/srv/a;b").map(|p| p.dir),
            Ok("/srv/a;b".into())
        );
    }

    #[test]
    fn save_path_refuses_what_it_cannot_trust() {
        for bad in [
            "",
            "relative/sessions",
            "2;",
            "x;/tmp",
            "-1;/tmp",
            "2;999;/tmp",
            "2;;/tmp",
            "2;8;/tmp",
            "99999999999999999999999;/tmp",
            "2;0600;",
        ] {
            assert!(SavePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn session_ids_follow_phps_rules() {
        for good in ["a", "abc123", "A-b,C", &"x".repeat(256)] {
            assert!(valid_session_id(good), "{good:?}");
        }
        for bad in [
            "",
            &"x".repeat(257),
            "../etc/passwd",
            "a/b",
            "a.b",
            "a_b",
            "a b",
            "a\0b",
            "é",
            "abc\n",
        ] {
            assert!(!valid_session_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn files_are_laid_out_as_phps_files_handler_does() {
        let flat = SavePath::parse("/s").unwrap();
        assert_eq!(flat.file_for("abc"), Some(PathBuf::from("/s/sess_abc")));
        let deep = SavePath::parse("2;/s").unwrap();
        assert_eq!(deep.file_for("abc"), Some(PathBuf::from("/s/a/b/sess_abc")));
        assert_eq!(deep.file_for("ab"), None);
        assert_eq!(deep.file_for("../x"), None);
        assert_eq!(flat.file_for("../x"), None);
    }

    #[test]
    fn refusals_never_show_the_id() {
        let store = SessionStore::new(SavePath::parse("9;/nonexistent").unwrap());
        let now = SystemTime::now();
        for id in ["../secret-id", "short1"] {
            let refusal = store.read(id, now).unwrap_err();
            assert!(!refusal.to_string().contains(id), "{refusal}");
        }
        let store = SessionStore::new(SavePath::parse("/nonexistent").unwrap());
        let refusal = store.read("secretid42", now).unwrap_err();
        assert!(matches!(refusal, Refusal::Missing), "{refusal:?}");
        assert!(!refusal.to_string().contains("secretid42"));
    }
}
