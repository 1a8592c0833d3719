//! Which version of a file: what the config store, the history memo and the entry index
//! compare to know that a file changed (rewritten in place or replaced by a rename).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified_ns: i64,
    pub inode: u64,
}

impl FileStamp {
    /// The stamp of a file's metadata (no I/O).
    pub fn of(meta: &Metadata) -> FileStamp {
        FileStamp {
            len: meta.len(),
            modified_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            inode: meta.ino(),
        }
    }

    /// The stamp of the file at `path` now (one `stat`); `None` if there is none.
    pub fn read(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path)
            .ok()
            .map(|meta| FileStamp::of(&meta))
    }
}
