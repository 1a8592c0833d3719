//! The PHP page's cache files, read and written in its format so both can share them.
//!
//! `ct/dat/pricing_cache.json` (fresh 300 s) and
//! `ct/dat/transaction_cache/transactions_{md5(domain)}_{Y-m-d}.json` (fresh 3600 s).
//! A file that is missing, unreadable, not JSON, of the wrong shape or from the future is a
//! miss, never an error. Writes go to a temporary file in the same folder, then a rename, so
//! no reader ever sees half a file. This module performs file I/O only.

use std::fs;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::{Duration, Instant, SystemTime};

use chrono::DateTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::data::digest::md5_hex;
use crate::data::history::{EntryIndex, MAX_TRANSACTIONS, TransactionList};
use crate::data::stamp::FileStamp;

/// How long the pricing cache is fresh, in seconds.
pub const PRICING_TTL: i64 = 300;
/// How long a transaction cache file is fresh, in seconds.
pub const TRANSACTIONS_TTL: i64 = 3600;
/// A timestamp this far ahead of our clock is "from the future" and ignored.
const CLOCK_SKEW: i64 = 60;

/// True when an entry written at `timestamp` is still fresh at `now`.
pub fn is_fresh(timestamp: i64, now: i64, ttl: i64) -> bool {
    timestamp <= now + CLOCK_SKEW && now - timestamp < ttl
}

/// A cache file's contents with the time it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached<T> {
    pub timestamp: i64,
    pub value: T,
}

/// Reads the pricing cache: the `pricing/current` data object and its timestamp.
pub fn read_pricing(path: &Path) -> Option<Cached<Value>> {
    parse_pricing(&fs::read(path).ok()?)
}

/// Parses a pricing cache file's bytes (pure; fuzzed).
pub fn parse_pricing(bytes: &[u8]) -> Option<Cached<Value>> {
    #[derive(Deserialize)]
    struct PricingFile {
        timestamp: i64,
        data: Value,
    }
    let file: PricingFile = serde_json::from_slice(bytes).ok()?;
    file.data.is_object().then_some(Cached {
        timestamp: file.timestamp,
        value: file.data,
    })
}

/// Writes the pricing cache atomically.
pub fn write_pricing(path: &Path, now: i64, data: &Value) -> io::Result<()> {
    let body = json!({"timestamp": now, "data": data});
    write_atomically(path, body.to_string().as_bytes(), Access::AsPhp)
}

/// The transaction cache file of a domain for a local date (`Y-m-d`).
pub fn transaction_cache_file(dir: &Path, domain: &str, local_date: &str) -> PathBuf {
    HistoryFiles::of(domain).for_date(dir, local_date)
}

/// The transaction cache files of one domain, `transactions_{md5(domain)}_{Y-m-d}.json`:
/// the name's md5 is worked out once per config load, not on every view.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryFiles {
    /// `transactions_{md5(domain)}_`.
    prefix: String,
}

impl HistoryFiles {
    pub fn of(domain: &str) -> HistoryFiles {
        HistoryFiles {
            prefix: format!("transactions_{}_", md5_hex(domain)),
        }
    }

    /// The file for a local date (`Y-m-d`).
    pub fn for_date(&self, dir: &Path, local_date: &str) -> PathBuf {
        dir.join(format!("{}{local_date}.json", self.prefix))
    }

    /// Every file of this domain in `dir`, oldest day first.
    pub fn all(&self, dir: &Path) -> Vec<PathBuf> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(&self.prefix) && name.ends_with(".json"))
            .collect();
        names.sort();
        names.into_iter().map(|name| dir.join(name)).collect()
    }

    /// The newest file of a day other than `today`: yesterday's file is the best stale
    /// copy when the license server is down after midnight (or today's file is broken).
    pub fn newest_before(&self, dir: &Path, today: &str) -> Option<PathBuf> {
        let todays = format!("{}{today}.json", self.prefix);
        let mut names: Vec<String> = fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| {
                name.starts_with(&self.prefix) && name.ends_with(".json") && *name != todays
            })
            .collect();
        // Names end in Y-m-d, so the greatest name is the newest day.
        names.sort();
        names.pop().map(|name| dir.join(name))
    }
}

/// Reads a transaction cache file.
pub fn read_transactions(path: &Path) -> Option<Cached<TransactionList>> {
    parse_transactions_text(String::from_utf8(fs::read(path).ok()?).ok()?)
}

/// Parses a transaction cache file's bytes (pure; fuzzed).
pub fn parse_transactions(bytes: &[u8]) -> Option<Cached<TransactionList>> {
    parse_transactions_text(std::str::from_utf8(bytes).ok()?.to_string())
}

/// Finds the entries of a cache file's text; each is decoded when shown.
fn parse_transactions_text(text: String) -> Option<Cached<TransactionList>> {
    #[derive(Deserialize)]
    struct TransactionFile<'a> {
        timestamp: i64,
        #[serde(borrow)]
        transactions: Vec<&'a RawValue>,
    }
    let mut timestamp = 0;
    let list = TransactionList::locate(text, |text| {
        let file: TransactionFile<'_> = serde_json::from_str(text).ok()?;
        timestamp = file.timestamp;
        Some(file.transactions)
    })?;
    Some(Cached {
        timestamp,
        value: list,
    })
}

/// The entry index beside a transaction cache file: `NAME.json.idx`. PHP's Clear Cache
/// (`transactions_*.json`) leaves it behind, which is harmless: an index is used only
/// while it names the very file beside it.
pub fn index_path(cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap_or_default().to_os_string();
    name.push(".idx");
    cache.with_file_name(name)
}

/// The entries `rows(count)` of a transaction cache file (the page a view shows), read
/// through its index so that only their bytes are read. Without a valid index the whole
/// file is read, and its index written for the next request; a folder we cannot write
/// only costs each request that whole read.
pub fn read_transaction_page(
    path: &Path,
    rows: impl FnOnce(usize) -> Range<usize>,
) -> Option<Cached<TransactionList>> {
    let mut file = fs::File::open(path).ok()?;
    let stamp = FileStamp::of(&file.metadata().ok()?);
    let index = fs::read(index_path(path))
        .ok()
        .and_then(|bytes| EntryIndex::decode(&bytes))
        .filter(|index| index.file == stamp);
    if let Some(page) = index.and_then(|index| read_indexed(&file, &index, rows)) {
        return Some(page);
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let whole = parse_transactions_text(text)?;
    let index = EntryIndex {
        file: stamp,
        timestamp: whole.timestamp,
        entries: whole.value.entries().to_vec(),
    };
    if let Some(bytes) = index.encode() {
        // Best effort, see above.
        let _ = write_atomically(&index_path(path), &bytes, Access::Private);
    }
    Some(whole)
}

/// The entries `rows(count)` of the file an index describes; `None` when their bytes
/// cannot be read as text (the caller then reads the whole file).
fn read_indexed(
    file: &fs::File,
    index: &EntryIndex,
    rows: impl FnOnce(usize) -> Range<usize>,
) -> Option<Cached<TransactionList>> {
    let total = index.entries.len().min(MAX_TRANSACTIONS);
    let wanted = rows(total);
    let end = wanted.end.min(total);
    let start = wanted.start.min(end);
    let held = &index.entries[start..end];
    let (text, entries) = match (held.first(), held.last()) {
        (Some(first), Some(last)) => {
            let mut bytes = vec![0; last.end - first.start];
            file.read_exact_at(&mut bytes, first.start as u64).ok()?;
            let offset = first.start;
            let entries = held.iter().map(|r| r.start - offset..r.end - offset);
            (String::from_utf8(bytes).ok()?, entries.collect())
        }
        _ => (String::new(), Vec::new()),
    };
    Some(Cached {
        timestamp: index.timestamp,
        value: TransactionList::window(text, entries, start, total),
    })
}

/// Writes a transaction cache file atomically around the transactions' JSON text as the
/// server sent it.
pub fn write_transactions_raw(path: &Path, now: i64, domain: &str, raw: &str) -> io::Result<()> {
    let domain = serde_json::to_string(domain).map_err(io::Error::other)?;
    let mut body = Vec::with_capacity(raw.len() + domain.len() + 64);
    write!(
        body,
        r#"{{"timestamp":{now},"domain":{domain},"transactions":{raw}}}"#
    )?;
    write_atomically(path, &body, Access::AsPhp)
}

/// Deletes a file; a file already gone is not an error. Returns whether one was deleted.
pub fn delete(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes every `transactions_*.json` in the folder (and their indexes) and says how
/// many cache files went.
pub fn clear_transaction_caches(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut cleared = 0;
    for entry in entries {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("transactions_") {
            continue;
        }
        if name.ends_with(".json") && delete(&dir.join(&*name))? {
            cleared += 1;
        } else if name.ends_with(".json.idx") {
            // An index is not a cache of its own: removed, not counted.
            delete(&dir.join(&*name))?;
        }
    }
    Ok(cleared)
}

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The PHP page's own cache files: what PHP's `file_put_contents` gives them (0666
    /// less the umask), so the PHP page and its tools read them as before.
    AsPhp,
    /// Files of ours (the last good answers, the entry indexes): 0600, nobody else's to
    /// read.
    Private,
}

impl Access {
    fn mode(self) -> u32 {
        match self {
            Access::AsPhp => 0o666,
            Access::Private => 0o600,
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// creating the folder when missing. On any failure the temporary file is removed.
pub fn write_atomically(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("cache path has no folder"))?;
    fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(access.mode())
            .open(&temp)?;
        file.write_all(bytes)?;
        // No fsync: the rename alone keeps a killed process from tearing the file, and a
        // cache torn by a power cut reads as a miss. An fsync of a 2.5 MB history cost a
        // cold page view more than the license server's own answer time.
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    remove_abandoned_temporaries(dir, &name);
    result
}

/// A temporary file older than this was left by a process killed mid-write.
const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// Removes temporary files of `name` that a killed process left behind (the cache file
/// itself was never touched: the rename is what replaces it).
fn remove_abandoned_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if !(file_name.starts_with(&prefix) && file_name.ends_with(".tmp")) {
            continue;
        }
        let abandoned = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| {
                SystemTime::now()
                    .duration_since(modified)
                    .is_ok_and(|age| age > ABANDONED_AFTER)
            });
        if abandoned {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// An exclusive lock on a file beside a cache, held while one request fetches what the
/// cache lacks, so concurrent requests and processes sharing `ct/dat` wait for it
/// instead of all calling the license server. Released on drop.
pub struct FetchLock {
    _file: fs::File,
}

impl FetchLock {
    /// Waits up to `wait` for the lock. `None` when the lock file cannot be made (a
    /// read-only folder) or the wait ran out: the caller then fetches without it.
    pub fn acquire(path: &Path, wait: Duration) -> Option<FetchLock> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let deadline = Instant::now() + wait;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Some(FetchLock { _file: file });
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The admin's local date at `seconds`: names the day's transaction cache file (as PHP's
/// `date('Y-m-d')` does) and the CSV download.
pub fn local_date(seconds: i64, tz: Tz) -> chrono::NaiveDate {
    local_time(seconds, tz).date_naive()
}

/// Unix seconds as the admin's wall-clock time (the epoch when out of range).
pub fn local_time(seconds: i64, tz: Tz) -> DateTime<Tz> {
    DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder, removed when the guard drops (also when the test fails).
    fn temp_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("tokenusage-cache-{name}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn pricing_cache_is_stale_after_300_seconds() {
        assert!(is_fresh(1000, 1299, PRICING_TTL));
        assert!(!is_fresh(1000, 1300, PRICING_TTL));
    }

    #[test]
    fn a_timestamp_from_the_future_is_not_fresh() {
        assert!(!is_fresh(10_000, 1000, TRANSACTIONS_TTL));
    }

    #[test]
    fn transaction_cache_file_name_uses_md5_of_the_domain_and_the_date() {
        let path = transaction_cache_file(Path::new("/x"), "example.com", "2026-11-20");
        // md5("example.com") = 5ababd603b22780302dd8d83498e5172
        assert_eq!(
            path,
            Path::new("/x/transactions_5ababd603b22780302dd8d83498e5172_2026-11-20.json")
        );
    }

    #[test]
    fn pricing_round_trips_in_the_php_format() {
        let tmp = temp_dir("pricing");
        let dir = tmp.path();
        let path = dir.join("pricing_cache.json");
        let data = json!({"pricing": {"input_tokens": {"price": "0.20", "unit": 1000000}}});
        write_pricing(&path, 1763629200, &data).unwrap();
        let raw: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw, json!({"timestamp": 1763629200, "data": data}));
        assert_eq!(
            read_pricing(&path),
            Some(Cached {
                timestamp: 1763629200,
                value: data
            })
        );
    }

    #[test]
    fn broken_cache_files_are_misses() {
        let tmp = temp_dir("broken");
        let dir = tmp.path();
        let path = dir.join("f.json");
        for bad in [
            &b"{\"timestamp\": 17636"[..],
            b"not json",
            b"[]",
            b"{\"timestamp\": \"x\", \"data\": {}}",
            b"{\"timestamp\": 1, \"data\": 5}",
        ] {
            fs::write(&path, bad).unwrap();
            assert_eq!(read_pricing(&path), None);
            assert_eq!(read_transactions(&path), None);
        }
        assert_eq!(read_pricing(&dir.join("missing.json")), None);
    }

    #[test]
    fn transactions_written_by_php_are_read() {
        let php = br#"{"timestamp":1763629200,"domain":"example.com","transactions":[{"id":1,"created_at":"2026-11-20 10:04:11","transaction_type":"usage","service_type":"image_search via openai","amount":"-0.0125","tokens_used":1834,"images_processed":1,"description":"x"}]}"#;
        let cached = parse_transactions(php).unwrap();
        assert_eq!(cached.timestamp, 1763629200);
        assert_eq!(cached.value.get(0).unwrap().amount, -0.0125);
        assert_eq!(cached.value.get(0).unwrap().tokens_used, 1834);
    }

    fn php_history(entries: usize, description: &str) -> String {
        let list: Vec<String> = (0..entries)
            .map(|i| format!(r#"{{"id":{i},"amount":"-0.5","description":"{description} {i}"}}"#))
            .collect();
        format!(
            r#"{{"timestamp":1763629200,"domain":"example.com","transactions":[{}]}}"#,
            list.join(", ")
        )
    }

    fn descriptions(cached: &Cached<TransactionList>) -> Vec<String> {
        cached.value.iter().map(|t| t.description).collect()
    }

    #[test]
    fn a_page_is_read_through_the_index_written_by_the_first_read() {
        let tmp = temp_dir("page");
        let dir = tmp.path();
        let path = dir.join("transactions_x_2026-11-20.json");
        fs::write(&path, php_history(10, "first")).unwrap();
        let whole = read_transaction_page(&path, |_| 3..6).unwrap();
        assert!(whole.value.is_whole(), "no index yet: the whole file");
        assert!(index_path(&path).exists());

        let page = read_transaction_page(&path, |count| {
            assert_eq!(count, 10);
            3..6
        })
        .unwrap();
        assert_eq!((page.timestamp, page.value.len()), (1763629200, 10));
        assert!(!page.value.is_whole(), "only the page was read");
        assert_eq!(descriptions(&page), ["first 3", "first 4", "first 5"]);
        assert_eq!(
            read_transaction_page(&path, |_| 8..50)
                .unwrap()
                .value
                .iter()
                .count(),
            2
        );
        assert_eq!(
            read_transaction_page(&path, |_| 20..50)
                .unwrap()
                .value
                .iter()
                .count(),
            0
        );

        // A rewritten file (as PHP rewrites it, in place) makes the index stale.
        fs::write(&path, php_history(12, "second")).unwrap();
        let reread = read_transaction_page(&path, |_| 0..2).unwrap();
        assert_eq!(reread.value.len(), 12);
        assert_eq!(descriptions(&reread)[..2], ["second 0", "second 1"]);
        let page = read_transaction_page(&path, |_| 11..12).unwrap();
        assert_eq!(descriptions(&page), ["second 11"]);

        // A damaged index is ignored and replaced.
        fs::write(index_path(&path), b"garbage").unwrap();
        let page = read_transaction_page(&path, |_| 0..1).unwrap();
        assert_eq!(page.value.len(), 12);
        assert!(EntryIndex::decode(&fs::read(index_path(&path)).unwrap()).is_some());
    }

    #[test]
    fn a_broken_file_is_a_miss_even_with_an_index() {
        let tmp = temp_dir("page-broken");
        let dir = tmp.path();
        let path = dir.join("transactions_x_2026-11-20.json");
        fs::write(&path, php_history(3, "ok")).unwrap();
        read_transaction_page(&path, |_| 0..1).unwrap();
        fs::write(&path, "not json").unwrap();
        assert_eq!(read_transaction_page(&path, |_| 0..1), None);
        fs::remove_file(&path).unwrap();
        assert_eq!(read_transaction_page(&path, |_| 0..1), None);
    }

    #[test]
    fn clear_cache_deletes_only_transaction_files_and_counts_them() {
        let tmp = temp_dir("clear");
        let dir = tmp.path();
        for name in [
            "transactions_a_2026-11-19.json",
            "transactions_b_2026-11-20.json",
            "transactions_b_2026-11-20.json.idx",
            "notes.txt",
        ] {
            fs::write(dir.join(name), "{}").unwrap();
        }
        assert_eq!(
            clear_transaction_caches(dir).unwrap(),
            2,
            "indexes are not counted"
        );
        assert!(!dir.join("transactions_b_2026-11-20.json.idx").exists());
        assert!(dir.join("notes.txt").exists());
        assert_eq!(clear_transaction_caches(&dir.join("absent")).unwrap(), 0);
    }

    #[test]
    fn the_newest_other_days_file_of_the_domain_is_the_stale_copy() {
        let tmp = temp_dir("latest");
        let dir = tmp.path();
        let older = transaction_cache_file(dir, "example.com", "2026-11-18");
        let newer = transaction_cache_file(dir, "example.com", "2026-11-19");
        let other = transaction_cache_file(dir, "other.com", "2026-11-21");
        for path in [&older, &newer, &other] {
            fs::write(path, "{}").unwrap();
        }
        assert_eq!(
            HistoryFiles::of("example.com").newest_before(dir, "2026-11-20"),
            Some(newer.clone())
        );
        assert_eq!(
            HistoryFiles::of("none.com").newest_before(dir, "2026-11-20"),
            None
        );
        // Today's file (broken, or it would not be asked) is not its own stale copy.
        fs::write(
            transaction_cache_file(dir, "example.com", "2026-11-20"),
            "{}",
        )
        .unwrap();
        assert_eq!(
            HistoryFiles::of("example.com").newest_before(dir, "2026-11-20"),
            Some(newer)
        );
    }

    #[test]
    fn a_second_fetch_lock_waits_for_the_first() {
        let tmp = temp_dir("lock");
        let dir = tmp.path();
        let path = dir.join(".lock");
        let first = FetchLock::acquire(&path, Duration::from_millis(10)).unwrap();
        assert!(FetchLock::acquire(&path, Duration::from_millis(50)).is_none());
        drop(first);
        assert!(FetchLock::acquire(&path, Duration::from_millis(50)).is_some());
        assert!(FetchLock::acquire(&dir.join("missing/.lock"), Duration::ZERO).is_none());
    }

    #[test]
    fn abandoned_temporary_files_are_removed_by_the_next_write() {
        let tmp = temp_dir("abandoned");
        let dir = tmp.path();
        let old = dir.join(".f.json.1.deadbeef.tmp");
        let fresh = dir.join(".f.json.2.cafe.tmp");
        fs::write(&old, "half").unwrap();
        fs::write(&fresh, "being written").unwrap();
        let past = SystemTime::now() - Duration::from_secs(600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        write_atomically(&dir.join("f.json"), b"{}", Access::AsPhp).unwrap();
        assert!(!old.exists());
        assert!(fresh.exists(), "another process may still be writing it");
    }

    #[test]
    fn atomic_write_creates_the_folder_and_leaves_no_temporary_file() {
        let tmp = temp_dir("atomic");
        let dir = tmp.path();
        let path = dir.join("sub").join("file.json");
        write_atomically(&path, b"{}", Access::AsPhp).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert_eq!(fs::read_dir(dir.join("sub")).unwrap().count(), 1);
    }
}
