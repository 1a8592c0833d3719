//! The kept history: every transaction the license API has returned for an installation,
//! in one SQLite database in its `ct/dat`, so nothing is lost past the API's 10,000-row
//! window. Not a cache: Clear Cache and Refresh Data leave it.
//!
//! Transactions are deduplicated by `id` (by their whole content where there is none)
//! and numbered newest-last (`pos`, dense), so any page is one index range. Each local
//! day's sums per service are kept beside them, in the same transaction, so the insights
//! read a few hundred rows, not the history. WAL and a busy timeout let FastCGI workers,
//! CGI processes and `report` share the file; a write is one transaction, so `kill -9`
//! loses nothing committed. Performs file I/O (SQLite).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::data::cache::{self, HistoryFiles, local_date};
use crate::data::digest::hex;
use crate::data::history::TransactionList;
use crate::data::license_api::wire::Transaction;
use crate::data::stamp::FileStamp;

/// The most transactions kept: decades of a busy site (1,000 a day is 365,000 a year),
/// about 2 GB; it bounds the disk a license server sending new ids on every call can fill.
pub const MAX_KEPT: usize = 5_000_000;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One local day's sums for one service (`service_type` as the server sends it; empty
/// for purchases and refunds), as the kept history holds them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaySums {
    pub day: NaiveDate,
    pub service: String,
    /// Usage amounts, made positive.
    pub spend: f64,
    pub purchases: f64,
    pub refunds: f64,
    pub tokens: u64,
    pub images: u64,
    /// Transactions of any type.
    pub transactions: u64,
}

/// The whole kept history's count, span and sums (`first`/`last` in Unix seconds; a
/// transaction whose date cannot be read counts in the sums but not in the span).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub transactions: u64,
    #[serde(serialize_with = "unix_as_rfc3339")]
    pub first: Option<i64>,
    #[serde(serialize_with = "unix_as_rfc3339")]
    pub last: Option<i64>,
    pub spend: f64,
    pub purchases: f64,
    pub refunds: f64,
}

/// Why the kept history could not be read or written.
#[derive(Debug)]
pub struct KeptError {
    pub path: PathBuf,
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for KeptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Could not keep the history in {}: {}",
            self.path.display(),
            self.cause
        )
    }
}

impl std::error::Error for KeptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// A transaction's kind as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other = 0,
    Usage = 1,
    Purchase = 2,
    Refund = 3,
}

impl Kind {
    fn of(transaction_type: &str) -> Kind {
        let is = |name: &str| transaction_type.eq_ignore_ascii_case(name);
        if is("usage") {
            Kind::Usage
        } else if is("purchase") {
            Kind::Purchase
        } else if is("refund") {
            Kind::Refund
        } else {
            Kind::Other
        }
    }

    fn from_code(code: i64) -> Kind {
        match code {
            1 => Kind::Usage,
            2 => Kind::Purchase,
            3 => Kind::Refund,
            _ => Kind::Other,
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tx (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    pos INTEGER NOT NULL,
    unix INTEGER,
    kind INTEGER NOT NULL,
    service TEXT NOT NULL,
    amount REAL NOT NULL,
    tokens INTEGER NOT NULL,
    images INTEGER NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tx_pos ON tx (pos);
CREATE INDEX IF NOT EXISTS tx_time ON tx (unix, kind, amount);
CREATE TABLE IF NOT EXISTS days (
    day TEXT NOT NULL,
    service TEXT NOT NULL,
    spend REAL NOT NULL,
    purchases REAL NOT NULL,
    refunds REAL NOT NULL,
    tokens INTEGER NOT NULL,
    images INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    PRIMARY KEY (day, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (path TEXT PRIMARY KEY, stamp TEXT NOT NULL) WITHOUT ROWID;
";

/// One installation's kept history, open.
pub struct KeptHistory {
    conn: Connection,
    path: PathBuf,
    zone: Tz,
    /// [`MAX_KEPT`], smaller in tests.
    limit: usize,
}

impl fmt::Debug for KeptHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptHistory")
            .field("path", &self.path)
            .field("zone", &self.zone)
            .finish()
    }
}

/// A transaction ready to store: what the columns and day sums need, and its text
/// borrowed from the list (a window of 10,000 is not copied).
struct Row<'a> {
    key: String,
    unix: Option<i64>,
    kind: Kind,
    service: String,
    /// Signed, finite.
    amount: f64,
    tokens: u64,
    images: u64,
    raw: &'a str,
}

impl KeptHistory {
    /// Opens (creating, private to the owner) the database at `path`, its days counted
    /// in `zone` (recounted once if the zone changed).
    pub fn open(path: &Path, zone: Tz) -> Result<KeptHistory, KeptError> {
        let fail = |cause: Box<dyn std::error::Error + Send + Sync>| KeptError {
            path: path.to_path_buf(),
            cause,
        };
        // SQLite gives its -wal and -shm files the database file's permissions.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail(e.into()))?;
        let conn = Connection::open(path).map_err(|e| fail(e.into()))?;
        let mut kept = KeptHistory {
            conn,
            path: path.to_path_buf(),
            zone,
            limit: MAX_KEPT,
        };
        kept.prepare().map_err(|e| fail(e.into()))?;
        Ok(kept)
    }

    fn fail(&self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> KeptError {
        KeptError {
            path: self.path.clone(),
            cause: cause.into(),
        }
    }

    fn prepare(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        self.conn
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        // With WAL, NORMAL loses nothing a crashed process committed (only a power cut
        // may take the last transactions), and is much faster than FULL.
        // A small page cache: one process may hold a connection per installation (the
        // reads are a page of rows and a few hundred day sums). The WAL file is cut back
        // after a checkpoint instead of keeping its largest size.
        self.conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;
             PRAGMA journal_size_limit = 4194304;",
        )?;
        let ready: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'zone'", [], |r| {
                r.get(0)
            })
            .optional()
            .or_else(|e| match e {
                rusqlite::Error::SqliteFailure(..) => Ok(None),
                other => Err(other),
            })?;
        if ready.as_deref() == Some(self.zone.name()) {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let stored: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'zone'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if stored.as_deref() != Some(self.zone.name()) {
            recount_days(&tx, self.zone)?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('zone', ?1)",
                [self.zone.name()],
            )?;
            bump_generation(&tx)?;
        }
        tx.commit()
    }

    /// Changes whenever the kept transactions change (any process).
    pub fn generation(&self) -> Result<i64, KeptError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT value FROM meta WHERE key = 'generation'), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(e))
    }

    /// The generation, the count and when the newest history read was fetched, in one
    /// query (every view asks).
    fn state(&self) -> Result<(i64, usize, Option<i64>), KeptError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT value FROM meta WHERE key = 'generation'), 0),
                        (SELECT coalesce(max(pos) + 1, 0) FROM tx),
                        (SELECT value FROM meta WHERE key = 'fetched_at')",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        r.get(2)?,
                    ))
                },
            )
            .map_err(|e| self.fail(e))
    }

    /// Transactions kept.
    pub fn count(&self) -> Result<usize, KeptError> {
        let count: i64 = self
            .conn
            .query_row("SELECT coalesce(max(pos) + 1, 0) FROM tx", [], |r| r.get(0))
            .map_err(|e| self.fail(e))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Keeps the transactions of `list` (fetched at `fetched_at`, Unix seconds) not kept
    /// yet, in one transaction; `source` (a cache file and its stamp) is recorded as read. Returns how many were new; at the
    /// limit, what fits is kept and the error says the rest was not.
    pub fn absorb(
        &mut self,
        list: &TransactionList,
        fetched_at: i64,
        source: Option<(&Path, FileStamp)>,
    ) -> Result<usize, KeptError> {
        // A window read before, unchanged (a view's fetch when nothing happened since),
        // adds nothing: recognised by its digest instead of 10,000 lookups.
        let digest = window_digest(list);
        let mut rows = if self.meta_text("window")?.as_deref() == Some(digest.as_str()) {
            Vec::new()
        } else {
            rows_of(list)
        };
        let (zone, limit) = (self.zone, self.limit as i64);
        let mut full = false;
        let result = (|| -> rusqlite::Result<usize> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let added;
            (added, full) = insert_rows(&tx, &mut rows, zone, limit)?;
            if let Some((path, stamp)) = source {
                tx.execute(
                    "INSERT OR REPLACE INTO sources (path, stamp) VALUES (?1, ?2)",
                    params![path.to_string_lossy(), stamp_text(stamp)],
                )?;
            }
            if added > 0 {
                bump_generation(&tx)?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('fetched_at', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [fetched_at],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('window', ?1)",
                [&digest],
            )?;
            tx.commit()?;
            Ok(added)
        })();
        let added = result.map_err(|e| self.fail(e))?;
        if added > 1000 {
            // Best effort: a large fill leaves a large WAL; fold it in and cut it back.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        if full {
            return Err(self.fail(format!(
                "it holds its limit of {} transactions; newer ones were not kept",
                self.limit
            )));
        }
        Ok(added)
    }

    /// True when the file at `path` was read into the history as it is now.
    pub fn has_read(&self, path: &Path, stamp: FileStamp) -> Result<bool, KeptError> {
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT stamp FROM sources WHERE path = ?1",
                [path.to_string_lossy()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        Ok(stored.as_deref() == Some(stamp_text(stamp).as_str()))
    }

    /// Reads the cache files of `files` in `dir` not read as they are now: at first use
    /// every one (the PHP page's, yesterday's too), later `only` (today's file).
    pub fn catch_up(
        &mut self,
        dir: &Path,
        files: &HistoryFiles,
        only: Option<&Path>,
    ) -> Result<usize, KeptError> {
        let first_use = !self.meta_flag("folder_read")?;
        let paths: Vec<PathBuf> = match (first_use, only) {
            (false, Some(path)) => vec![path.to_path_buf()],
            (false, None) => Vec::new(),
            (true, _) => files.all(dir),
        };
        let mut added = 0;
        for path in paths {
            let Some(stamp) = FileStamp::read(&path) else {
                continue;
            };
            if self.has_read(&path, stamp)? {
                continue;
            }
            if let Some(cached) = cache::read_transactions(&path) {
                added += self.absorb(&cached.value, cached.timestamp, Some((&path, stamp)))?;
            }
        }
        if first_use {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('folder_read', 1)",
                    [],
                )
                .map_err(|e| self.fail(e))?;
        }
        Ok(added)
    }

    fn meta_text(&self, key: &str) -> Result<Option<String>, KeptError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn meta_flag(&self, key: &str) -> Result<bool, KeptError> {
        self.conn
            .query_row("SELECT 1 FROM meta WHERE key = ?1", [key], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.fail(e))
    }

    /// Entries `rows` of the history, newest first (0 is the newest), as a window list
    /// that knows the whole history's length.
    pub fn page(&self, rows: Range<usize>) -> Result<TransactionList, KeptError> {
        let total = self.count()?;
        let end = rows.end.min(total);
        let start = rows.start.min(end);
        // Newest-first index i is pos total - 1 - i.
        let (low, high) = ((total - end) as i64, (total - start) as i64);
        let mut statement = self
            .conn
            .prepare_cached("SELECT raw FROM tx WHERE pos >= ?1 AND pos < ?2 ORDER BY pos DESC")
            .map_err(|e| self.fail(e))?;
        let mut text = String::with_capacity((end - start) * 300);
        let mut entries = Vec::with_capacity(end - start);
        let mut raws = statement
            .query(params![low, high])
            .map_err(|e| self.fail(e))?;
        while let Some(row) = raws.next().map_err(|e| self.fail(e))? {
            let raw = row.get_ref(0).map_err(|e| self.fail(e))?;
            let raw = raw.as_str().map_err(|e| self.fail(e))?;
            let at = text.len();
            text.push_str(raw);
            entries.push(at..text.len());
        }
        Ok(TransactionList::window(text, entries, start, total))
    }

    /// Hands every transaction, newest first, to `use_them` (read as it goes).
    pub fn with_all<R>(
        &self,
        use_them: impl FnOnce(&mut dyn Iterator<Item = Transaction>) -> R,
    ) -> Result<R, KeptError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT raw FROM tx ORDER BY pos DESC")
            .map_err(|e| self.fail(e))?;
        let raws = statement
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.fail(e))?;
        // A read that fails midway ends the iteration; the error is returned instead.
        let mut failure = None;
        let mut transactions = raws.map_while(|raw| match raw {
            Ok(raw) => Some(decode(&raw)),
            Err(e) => {
                failure = Some(e);
                None
            }
        });
        let result = use_them(&mut transactions);
        drop(transactions);
        match failure {
            Some(e) => Err(self.fail(e)),
            None => Ok(result),
        }
    }

    /// Each (local day, service)'s sums from `from` on.
    pub fn days_from(&self, from: NaiveDate) -> Result<Vec<DaySums>, KeptError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT day, service, spend, purchases, refunds, tokens, images, transactions
                 FROM days WHERE day >= ?1 ORDER BY day",
            )
            .map_err(|e| self.fail(e))?;
        let rows = statement
            .query_map([from.format("%Y-%m-%d").to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    DaySums {
                        day: NaiveDate::MIN,
                        service: r.get(1)?,
                        spend: r.get(2)?,
                        purchases: r.get(3)?,
                        refunds: r.get(4)?,
                        tokens: r.get::<_, i64>(5)?.max(0) as u64,
                        images: r.get::<_, i64>(6)?.max(0) as u64,
                        transactions: r.get::<_, i64>(7)?.max(0) as u64,
                    },
                ))
            })
            .map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (day, mut sums) = row.map_err(|e| self.fail(e))?;
            if let Ok(day) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
                sums.day = day;
                out.push(sums);
            }
        }
        Ok(out)
    }

    /// Usage spend (positive) since `unix`.
    pub fn spend_since(&self, unix: i64) -> Result<f64, KeptError> {
        self.conn
            .query_row(
                "SELECT total(-amount) FROM tx WHERE unix >= ?1 AND kind = 1",
                [unix],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(e))
    }

    /// Usage spend since `unix` per service (`service_type` as sent).
    pub fn spend_by_service_since(&self, unix: i64) -> Result<Vec<(String, f64)>, KeptError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT service, total(-amount) FROM tx WHERE unix >= ?1 AND kind = 1
                 GROUP BY service ORDER BY service",
            )
            .map_err(|e| self.fail(e))?;
        let rows = statement
            .query_map([unix], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// The whole history's count, span and sums.
    pub fn totals(&self) -> Result<Totals, KeptError> {
        let sums = self.conn.query_row(
            "SELECT coalesce(sum(transactions), 0), total(spend), total(purchases), total(refunds)
             FROM days",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, f64>(3)?,
                ))
            },
        );
        let span = self.conn.query_row(
            "SELECT (SELECT min(unix) FROM tx), (SELECT max(unix) FROM tx)",
            [],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
        );
        let ((count, spend, purchases, refunds), (first, last)) = (
            sums.map_err(|e| self.fail(e))?,
            span.map_err(|e| self.fail(e))?,
        );
        Ok(Totals {
            transactions: count.max(0) as u64,
            first,
            last,
            spend,
            purchases,
            refunds,
        })
    }
}

/// The transactions of a list, oldest first as the server sent them (it sends newest
/// first), in time order: equal times keep the server's order.
fn rows_of(list: &TransactionList) -> Vec<Row<'_>> {
    let mut rows: Vec<Row> = (0..list.len())
        .rev()
        .filter_map(|i| {
            let raw = list.raw(i)?;
            let t = decode(raw);
            let amount = t.signed_amount();
            Some(Row {
                key: key_of(&t, raw),
                unix: utc_seconds(&t.created_at),
                kind: Kind::of(&t.transaction_type),
                amount: if amount.is_finite() { amount } else { 0.0 },
                tokens: t.tokens_used,
                images: t.images_processed,
                service: t.service_type,
                raw,
            })
        })
        .collect();
    rows.sort_by_key(|row| row.unix);
    rows
}

/// A digest of a list's entries as sent.
fn window_digest(list: &TransactionList) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for i in 0..list.len() {
        if let Some(raw) = list.raw(i) {
            context.update(raw.as_bytes());
            context.update(b"\n");
        }
    }
    hex(context.finish().as_ref())
}

fn decode(raw: &str) -> Transaction {
    serde_json::from_str(raw).unwrap_or_else(|_| Transaction::unreadable(raw))
}

/// A transaction's identity: its `id`, else a digest of its content (re-serialised, so
/// the PHP page's re-encoded copy of an entry is the same entry).
fn key_of(transaction: &Transaction, raw: &str) -> String {
    if !transaction.id.is_empty() {
        return format!("id:{}", transaction.id);
    }
    let canonical = serde_json::from_str::<serde_json::Value>(raw)
        .map(|value| value.to_string())
        .unwrap_or_else(|_| raw.to_string());
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    format!("sha256:{}", hex(digest.as_ref()))
}

/// `created_at` (`YYYY-MM-DD HH:MM:SS`, UTC) in Unix seconds.
fn utc_seconds(created_at: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(created_at.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// What one transaction adds to its day's sums.
fn add_to_day(sums: &mut DaySums, kind: Kind, amount: f64, tokens: u64, images: u64) {
    match kind {
        Kind::Usage => sums.spend += -amount,
        Kind::Purchase => sums.purchases += amount,
        Kind::Refund => sums.refunds += amount,
        Kind::Other => {}
    }
    sums.tokens = sums.tokens.saturating_add(tokens);
    sums.images = sums.images.saturating_add(images);
    sums.transactions += 1;
}

/// The local day a transaction counts on; `""` for one whose date cannot be read (it
/// counts in the totals, on no day).
fn day_key(unix: Option<i64>, zone: Tz) -> String {
    unix.map(|s| local_date(s, zone).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

type DayKey = (String, String);

/// Inserts the rows not kept yet, up to `limit` in all, and adds them to their days;
/// renumbers the positions when one is older than the newest kept. Returns how many were
/// added and whether the limit stopped any.
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &mut [Row<'_>],
    zone: Tz,
    limit: i64,
) -> rusqlite::Result<(usize, bool)> {
    let newest: Option<Option<i64>> = tx
        .query_row("SELECT unix FROM tx ORDER BY pos DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    let mut next_pos: i64 =
        tx.query_row("SELECT coalesce(max(pos) + 1, 0) FROM tx", [], |r| r.get(0))?;
    let mut renumber = false;
    let mut days: HashMap<DayKey, DaySums> = HashMap::new();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO tx (key, pos, unix, kind, service, amount, tokens, images, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut added = 0;
    let mut full = false;
    for row in rows.iter_mut() {
        if next_pos >= limit {
            // Newest last: what is left is the newest; keep the oldest whole, say so.
            full = tx
                .query_row("SELECT 1 FROM tx WHERE key = ?1", [&row.key], |_| Ok(()))
                .optional()?
                .is_none();
            if full {
                break;
            }
            continue;
        }
        let changed = insert.execute(params![
            row.key,
            next_pos,
            row.unix,
            row.kind as i64,
            row.service,
            row.amount,
            i64::try_from(row.tokens).unwrap_or(i64::MAX),
            i64::try_from(row.images).unwrap_or(i64::MAX),
            row.raw
        ])?;
        if changed == 0 {
            continue;
        }
        added += 1;
        next_pos += 1;
        if newest.is_some_and(|newest| row.unix < newest) {
            renumber = true;
        }
        let key = (day_key(row.unix, zone), row.service.clone());
        let sums = days.entry(key).or_insert_with(|| empty_day(&row.service));
        add_to_day(sums, row.kind, row.amount, row.tokens, row.images);
    }
    drop(insert);
    if renumber {
        tx.execute(
            "UPDATE tx SET pos = o.rn FROM
               (SELECT id, row_number() OVER (ORDER BY unix, id) - 1 AS rn FROM tx) AS o
             WHERE tx.id = o.id AND tx.pos != o.rn",
            [],
        )?;
    }
    add_days(tx, days)?;
    Ok((added, full))
}

fn empty_day(service: &str) -> DaySums {
    DaySums {
        day: NaiveDate::MIN,
        service: service.to_string(),
        spend: 0.0,
        purchases: 0.0,
        refunds: 0.0,
        tokens: 0,
        images: 0,
        transactions: 0,
    }
}

fn add_days(
    tx: &rusqlite::Transaction<'_>,
    days: HashMap<DayKey, DaySums>,
) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO days (day, service, spend, purchases, refunds, tokens, images, transactions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (day, service) DO UPDATE SET
           spend = spend + excluded.spend, purchases = purchases + excluded.purchases,
           refunds = refunds + excluded.refunds, tokens = tokens + excluded.tokens,
           images = images + excluded.images, transactions = transactions + excluded.transactions",
    )?;
    for ((day, service), sums) in days {
        upsert.execute(params![
            day,
            service,
            sums.spend,
            sums.purchases,
            sums.refunds,
            i64::try_from(sums.tokens).unwrap_or(i64::MAX),
            i64::try_from(sums.images).unwrap_or(i64::MAX),
            i64::try_from(sums.transactions).unwrap_or(i64::MAX),
        ])?;
    }
    Ok(())
}

/// Counts every kept transaction's day again in `zone`.
fn recount_days(tx: &rusqlite::Transaction<'_>, zone: Tz) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM days", [])?;
    let mut days: HashMap<DayKey, DaySums> = HashMap::new();
    {
        let mut all = tx.prepare("SELECT unix, kind, service, amount, tokens, images FROM tx")?;
        let mut rows = all.query([])?;
        while let Some(r) = rows.next()? {
            let unix: Option<i64> = r.get(0)?;
            let service: String = r.get(2)?;
            let key = (day_key(unix, zone), service);
            let sums = days.entry(key).or_insert_with_key(|k| empty_day(&k.1));
            add_to_day(
                sums,
                Kind::from_code(r.get(1)?),
                r.get(3)?,
                r.get::<_, i64>(4)?.max(0) as u64,
                r.get::<_, i64>(5)?.max(0) as u64,
            );
        }
    }
    add_days(tx, days)
}

fn bump_generation(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )?;
    Ok(())
}

fn stamp_text(stamp: FileStamp) -> String {
    format!("{}:{}:{}", stamp.len, stamp.modified_ns, stamp.inode)
}

fn unix_as_rfc3339<S: serde::Serializer>(
    unix: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match unix.and_then(|s| DateTime::from_timestamp(s, 0)) {
        Some(t) => serializer.serialize_str(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => serializer.serialize_none(),
    }
}

/// Open kept histories by database path, shared by a process's requests (a database
/// removed or replaced is opened again), and what was last read from them: pages and
/// summaries, valid while the history's generation is unchanged.
#[derive(Debug, Default)]
pub struct KeptHistories {
    open: Mutex<OpenHistories>,
    pages: Mutex<Vec<(PageKey, Arc<TransactionList>)>>,
    summaries: Mutex<Vec<(SummaryKey, Arc<Summary>)>>,
}

/// Pages of rows kept in memory: a page's rendered rows are kept by its list.
const PAGES_KEPT: usize = 16;
const SUMMARIES_KEPT: usize = 8;

type PageKey = (PathBuf, i64, Range<usize>);
/// At most this many databases stay open in one process (each holds a page cache of up
/// to 512 KB); the least recently used is closed first and opened again when needed.
const OPEN_KEPT: usize = 24;

/// An open history: the database file and zone it was opened with, and when last used.
type OpenHistory = (FileStamp, Tz, Arc<Mutex<KeptHistory>>, u64);

/// Open histories by path, with the database file each was opened on and a use count.
#[derive(Debug, Default)]
struct OpenHistories {
    by_path: HashMap<PathBuf, OpenHistory>,
    uses: u64,
}
type SummaryKey = (PathBuf, i64, i64, NaiveDate);

/// What the insights are computed from, read from the kept history at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Each (local day, service)'s sums from the day asked for on.
    pub days: Vec<DaySums>,
    /// Usage spend of the last 7 x 24 h and 30 x 24 h.
    pub spend_7d: f64,
    pub spend_30d: f64,
    pub totals: Totals,
}

/// One installation's kept history as a request sees it.
#[derive(Debug, Clone)]
pub struct Kept {
    history: Arc<Mutex<KeptHistory>>,
    histories: Arc<KeptHistories>,
    path: PathBuf,
    /// Changes whenever the kept transactions change.
    pub generation: i64,
    /// Transactions kept.
    pub len: usize,
    /// When the newest history read into it was fetched (None: nothing read yet).
    pub fetched_at: Option<i64>,
}

impl Kept {
    /// Entries `rows` (newest first), read once per generation.
    pub fn page(&self, rows: Range<usize>) -> Result<Arc<TransactionList>, KeptError> {
        let key = (self.path.clone(), self.generation, rows.clone());
        if let Some(found) = recall(&self.histories.pages, &key) {
            return Ok(found);
        }
        let page = Arc::new(lock(&self.history).page(rows)?);
        keep(&self.histories.pages, key, page.clone(), PAGES_KEPT);
        Ok(page)
    }

    /// The sums the insights need at `now`, days from `from` on; read at most once a
    /// minute per generation.
    pub fn summary(&self, now: i64, from: NaiveDate) -> Result<Arc<Summary>, KeptError> {
        let key = (self.path.clone(), self.generation, now.div_euclid(60), from);
        if let Some(found) = recall(&self.histories.summaries, &key) {
            return Ok(found);
        }
        let summary = {
            let history = lock(&self.history);
            Arc::new(Summary {
                days: history.days_from(from)?,
                spend_7d: history.spend_since(now - 7 * 86_400)?,
                spend_30d: history.spend_since(now - 30 * 86_400)?,
                totals: history.totals()?,
            })
        };
        keep(
            &self.histories.summaries,
            key,
            summary.clone(),
            SUMMARIES_KEPT,
        );
        Ok(summary)
    }

    /// The open history, for reading everything (the CSV).
    pub fn history(&self) -> MutexGuard<'_, KeptHistory> {
        lock(&self.history)
    }
}

fn recall<K: PartialEq, V>(memo: &Mutex<Vec<(K, Arc<V>)>>, key: &K) -> Option<Arc<V>> {
    let memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    memo.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn keep<K, V>(memo: &Mutex<Vec<(K, Arc<V>)>>, key: K, value: Arc<V>, capacity: usize) {
    let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= capacity {
        memo.remove(0);
    }
    memo.push((key, value));
}

impl KeptHistories {
    /// The kept history at `path`, counted in `zone`.
    pub fn get(&self, path: &Path, zone: Tz) -> Result<Arc<Mutex<KeptHistory>>, KeptError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.uses += 1;
        let uses = open.uses;
        let current = FileStamp::read(path);
        // The zone it was opened with is kept beside it: taking the history's own lock
        // here would make every installation wait for one's long read (a CSV).
        if let Some((stamp, opened_in, kept, last_used)) = open.by_path.get_mut(path) {
            let same_file = current.is_some_and(|c| c.inode == stamp.inode);
            if same_file && *opened_in == zone {
                *last_used = uses;
                return Ok(kept.clone());
            }
        }
        let kept = Arc::new(Mutex::new(KeptHistory::open(path, zone)?));
        let stamp = FileStamp::read(path).unwrap_or(FileStamp {
            len: 0,
            modified_ns: 0,
            inode: 0,
        });
        if open.by_path.len() >= OPEN_KEPT && !open.by_path.contains_key(path) {
            let oldest = open
                .by_path
                .iter()
                .min_by_key(|(_, (_, _, _, last_used))| *last_used)
                .map(|(path, _)| path.clone());
            if let Some(oldest) = oldest {
                open.by_path.remove(&oldest);
            }
        }
        open.by_path
            .insert(path.to_path_buf(), (stamp, zone, kept.clone(), uses));
        Ok(kept)
    }

    /// An open history (from [`KeptHistories::get`]) as it is now.
    pub fn kept(
        self: &Arc<Self>,
        history: Arc<Mutex<KeptHistory>>,
        path: &Path,
    ) -> Result<Kept, KeptError> {
        let (generation, len, fetched_at) = lock(&history).state()?;
        Ok(Kept {
            history,
            histories: self.clone(),
            path: path.to_path_buf(),
            generation,
            len,
            fetched_at,
        })
    }
}

/// A kept history's lock; a request that panicked while holding it left SQLite's state
/// consistent (every write is one transaction), so the lock is taken over.
pub fn lock(kept: &Mutex<KeptHistory>) -> MutexGuard<'_, KeptHistory> {
    kept.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history as the server sends it: newest first, ids `ids` (descending), id `n`
    /// made `n` hours after 2026-11-18 11:00 UTC (id 47 at 2026-11-20 10:00).
    fn window(ids: Range<u32>) -> TransactionList {
        let first = 1_795_168_800i64 - 47 * 3600;
        let entries: Vec<String> = ids
            .rev()
            .map(|id| {
                let at = DateTime::from_timestamp(first + i64::from(id) * 3600, 0)
                    .unwrap()
                    .format("%Y-%m-%d %H:%M:%S");
                format!(
                    r#"{{"id":{id},"created_at":"{at}","transaction_type":"usage","service_type":"image_search via openai","amount":"-0.0100","tokens_used":10,"images_processed":1,"description":"job {id}"}}"#
                )
            })
            .collect();
        TransactionList::from_array(format!("[{}]", entries.join(","))).unwrap()
    }

    fn ids(list: &TransactionList) -> Vec<String> {
        list.iter().map(|t| t.id).collect()
    }

    fn open(dir: &Path) -> KeptHistory {
        KeptHistory::open(&dir.join("kept.sqlite"), Tz::UTC).unwrap()
    }

    #[test]
    fn two_overlapping_windows_keep_their_union_newest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kept = open(tmp.path());
        assert_eq!(kept.absorb(&window(0..100), 1, None).unwrap(), 100);
        assert_eq!(kept.absorb(&window(20..120), 1, None).unwrap(), 20);
        assert_eq!(kept.count().unwrap(), 120);
        let page = kept.page(0..5).unwrap();
        assert_eq!(page.len(), 120);
        assert_eq!(ids(&page), ["119", "118", "117", "116", "115"]);
        let last = kept.page(115..200).unwrap();
        assert_eq!(ids(&last), ["4", "3", "2", "1", "0"]);
        let all: Vec<String> = kept.with_all(|all| all.map(|t| t.id).collect()).unwrap();
        assert_eq!(all.len(), 120);
        assert_eq!(all.first().map(String::as_str), Some("119"));
    }

    #[test]
    fn an_older_window_read_later_takes_its_place_in_time() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kept = open(tmp.path());
        kept.absorb(&window(50..100), 1, None).unwrap();
        let before = kept.generation().unwrap();
        kept.absorb(&window(0..60), 1, None).unwrap();
        assert!(kept.generation().unwrap() > before);
        assert_eq!(kept.count().unwrap(), 100);
        let all: Vec<u32> = kept
            .with_all(|all| all.map(|t| t.id.parse().unwrap()).collect())
            .unwrap();
        assert_eq!(all, (0..100).rev().collect::<Vec<_>>());
        assert_eq!(ids(&kept.page(40..42).unwrap()), ["59", "58"]);
    }

    #[test]
    fn entries_without_an_id_are_kept_once_by_content_whatever_their_encoding() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kept = open(tmp.path());
        let sent = r#"[{"created_at":"2026-11-20 10:00:00","transaction_type":"purchase","amount":"10.0000","description":"order 1/2"}]"#;
        // The PHP page's json_encode escapes the slash and reorders nothing.
        let php = r#"[{"created_at": "2026-11-20 10:00:00", "transaction_type": "purchase", "amount": "10.0000", "description": "order 1\/2"}]"#;
        kept.absorb(&TransactionList::from_array(sent.into()).unwrap(), 1, None)
            .unwrap();
        let again = kept
            .absorb(&TransactionList::from_array(php.into()).unwrap(), 1, None)
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(kept.totals().unwrap().purchases, 10.0);
    }

    #[test]
    fn days_and_totals_count_each_transaction_once_in_the_zone() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("kept.sqlite");
        let mut kept = KeptHistory::open(&path, Tz::UTC).unwrap();
        kept.absorb(&window(0..48), 1, None).unwrap();
        kept.absorb(&window(0..48), 1, None).unwrap();
        let totals = kept.totals().unwrap();
        assert_eq!(totals.transactions, 48);
        assert!((totals.spend - 0.48).abs() < 1e-9);
        assert_eq!(totals.last, Some(1_795_168_800));
        assert_eq!(totals.first, Some(1_795_168_800 - 47 * 3600));
        let days = kept.days_from(NaiveDate::MIN).unwrap();
        let count = |day: &str| {
            days.iter()
                .filter(|d| d.day.to_string() == day)
                .map(|d| d.transactions)
                .sum::<u64>()
        };
        // 11:00..=23:00 on the 18th, all the 19th, 00:00..=10:00 on the 20th.
        assert_eq!(
            (
                count("2026-11-18"),
                count("2026-11-19"),
                count("2026-11-20")
            ),
            (13, 24, 11)
        );
        drop(kept);
        // Tokyo is 9 h ahead: the days are counted again.
        let kept = KeptHistory::open(&path, chrono_tz::Asia::Tokyo).unwrap();
        let days = kept.days_from(NaiveDate::MIN).unwrap();
        let on = |day: &str| days.iter().filter(|d| d.day.to_string() == day).count();
        assert_eq!(on("2026-11-20"), 1);
        assert_eq!(
            days.iter().map(|d| d.transactions).sum::<u64>(),
            48,
            "{days:?}"
        );
        assert!((kept.spend_since(1_795_168_800 - 10 * 3600).unwrap() - 0.11).abs() < 1e-9);
        let by_service = kept.spend_by_service_since(0).unwrap();
        assert_eq!(by_service.len(), 1);
        assert_eq!(by_service[0].0, "image_search via openai");
    }

    #[test]
    fn two_writers_at_once_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("kept.sqlite");
        KeptHistory::open(&path, Tz::UTC).unwrap();
        let writers: Vec<_> = (0..2u32)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut kept = KeptHistory::open(&path, Tz::UTC).unwrap();
                    for round in 0..10u32 {
                        let start = n * 1000 + round * 50;
                        kept.absorb(&window(start..start + 60), 1, None).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let kept = KeptHistory::open(&path, Tz::UTC).unwrap();
        assert_eq!(kept.count().unwrap(), 2 * 510);
        assert_eq!(kept.totals().unwrap().transactions, 2 * 510);
    }

    #[test]
    fn at_its_limit_the_history_keeps_what_fits_and_says_the_rest_was_not_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kept = open(tmp.path());
        kept.limit = 50;
        assert_eq!(kept.absorb(&window(0..40), 1, None).unwrap(), 40);
        let error = kept.absorb(&window(30..70), 1, None).unwrap_err();
        assert!(
            error.to_string().contains("limit of 50 transactions"),
            "{error}"
        );
        assert_eq!(kept.count().unwrap(), 50);
        assert_eq!(kept.totals().unwrap().transactions, 50);
        // Entries already kept are no news.
        assert_eq!(kept.absorb(&window(0..50), 1, None).unwrap(), 0);
    }

    #[test]
    fn the_database_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        open(tmp.path());
        let mode = std::fs::metadata(tmp.path().join("kept.sqlite"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
