//! Gathers what a page needs: each cache first, then the missing API calls in parallel,
//! so a page waits for the slowest call rather than their sum. Fresh answers are written
//! back to the PHP page's cache files.
//!
//! Performs file and HTTP I/O; a history read from its cache file is kept in memory while
//! the file is unchanged (same size and modification time), so a page view does not
//! re-read megabytes of JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::Value;

use std::time::{Duration, Instant};

use crate::data::cache::local_date;
use crate::data::cache::{self, Cached, FetchLock};
use crate::data::config::LicenseConfig;
use crate::data::flight::{Calls, Ticket};
use crate::data::history::TransactionList;
use crate::data::history::{PER_PAGE, paginate};
use crate::data::install::Installation;
use crate::data::kept_history::{self, Kept, KeptError, KeptHistories};
use crate::data::last_good::LastGood;
use crate::data::license_api::wire::{Pricing, UserInfo, UserStats};
use crate::data::license_api::{ApiClient, ApiError, Endpoint};
use crate::data::stamp::FileStamp;

/// Data shown with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    /// Unix seconds when it was fetched from the license server.
    pub fetched_at: i64,
    /// True when it was read from a cache rather than fetched for this request.
    pub from_cache: bool,
}

/// A history shared between requests (its entries are decoded when shown).
pub type History = Arc<TransactionList>;

/// Which parts a page needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub info: bool,
    pub stats: bool,
    pub pricing: bool,
    pub history: bool,
}

impl Needs {
    pub const DASHBOARD: Needs = Needs {
        info: true,
        stats: true,
        pricing: true,
        history: true,
    };
    pub const HISTORY: Needs = Needs {
        info: false,
        stats: false,
        pricing: false,
        history: true,
    };
}

/// What was gathered; a part not needed is `None`.
#[derive(Debug, Default)]
pub struct Gathered {
    pub info: Option<Result<Sourced<UserInfo>, ApiError>>,
    pub stats: Option<Result<Sourced<UserStats>, ApiError>>,
    pub pricing: Option<Result<Sourced<Pricing>, ApiError>>,
    pub history: Option<Result<Sourced<History>, ApiError>>,
    /// Problems that did not stop the page (a cache that could not be written).
    pub warnings: Vec<String>,
    /// Live calls that failed while older data is shown in their place.
    pub stale: Vec<Stale>,
    /// The kept history, with what the history part brought (None when it was not
    /// needed or cannot be read: then the part is shown as it came).
    pub kept: Option<Kept>,
    /// What the page should say about the kept history, if anything.
    pub kept_trouble: Option<KeptTrouble>,
}

/// Why the kept history is not all the page could show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptTrouble {
    /// It cannot be read or written (the log says why).
    Unavailable,
    /// It holds [`kept_history::MAX_KEPT`] transactions: newer ones are not kept.
    Full,
}

/// A part shown from older data because its live call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// Which call failed.
    pub part: Endpoint,
    pub error: ApiError,
    /// When the data shown was fetched.
    pub fetched_at: i64,
}

/// A fetched part and, if its cache could not be written, a warning.
type Fetched<T> = Result<(Sourced<T>, Option<String>), ApiError>;

/// Transaction cache files read, by path, valid while the file's stamp is unchanged,
/// within a memory budget across installations (least recently used go first).
#[derive(Debug)]
pub struct HistoryMemo {
    budget: usize,
    state: Mutex<MemoState>,
}

#[derive(Debug, Default)]
struct MemoState {
    entries: HashMap<PathBuf, MemoEntry>,
    /// Estimated bytes held by all entries.
    total: usize,
    /// Counts uses, to find the least recently used entry.
    tick: u64,
}

#[derive(Debug)]
struct MemoEntry {
    stamp: FileStamp,
    timestamp: i64,
    history: History,
    bytes: usize,
    last_used: u64,
}

/// The default memory budget of histories read: about nineteen 10,000-entry histories.
/// The estimate counts their text and the entries' positions, not the allocator's
/// overhead (bench/run.sh measures the RSS).
pub const DEFAULT_MEMO_BUDGET: usize = 48 * 1024 * 1024;

impl Default for HistoryMemo {
    fn default() -> Self {
        Self::with_budget(DEFAULT_MEMO_BUDGET)
    }
}

impl HistoryMemo {
    /// A memo holding at most about `budget` bytes of histories.
    pub fn with_budget(budget: usize) -> Self {
        HistoryMemo {
            budget,
            state: Mutex::new(MemoState::default()),
        }
    }

    /// The cache file's transactions and timestamp, read at most once per version.
    pub fn read(&self, path: &Path) -> Option<Cached<History>> {
        let current = FileStamp::read(path)?;
        {
            let mut state = self.lock();
            state.tick += 1;
            let tick = state.tick;
            if let Some(entry) = state.entries.get_mut(path) {
                if entry.stamp == current {
                    entry.last_used = tick;
                    return Some(Cached {
                        timestamp: entry.timestamp,
                        value: entry.history.clone(),
                    });
                }
            }
        }
        let parsed = cache::read_transactions(path)?;
        let history = Arc::new(parsed.value);
        // Stat again: the file may have been replaced while we read it.
        if FileStamp::read(path) == Some(current) {
            self.insert(path, current, parsed.timestamp, &history);
        }
        Some(Cached {
            timestamp: parsed.timestamp,
            value: history,
        })
    }

    /// Remembers what we just wrote, so the next view does not parse it again.
    fn remember(&self, path: &Path, timestamp: i64, history: &History) {
        if let Some(current) = FileStamp::read(path) {
            self.insert(path, current, timestamp, history);
        }
    }

    fn insert(&self, path: &Path, stamp: FileStamp, timestamp: i64, history: &History) {
        let bytes = history.memory_bytes();
        let mut state = self.lock();
        if let Some(old) = state.entries.remove(path) {
            state.total -= old.bytes;
        }
        if bytes > self.budget {
            return;
        }
        state.tick += 1;
        let entry = MemoEntry {
            stamp,
            timestamp,
            history: history.clone(),
            bytes,
            last_used: state.tick,
        };
        state.entries.insert(path.to_path_buf(), entry);
        state.total += bytes;
        while state.total > self.budget {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some(evicted) = state.entries.remove(&oldest) {
                state.total -= evicted.bytes;
            }
        }
    }

    /// Estimated bytes held now.
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.lock().total
    }

    /// Forgets the histories read from files in `dir` (after Clear Cache deleted them):
    /// their memory goes at once rather than when the budget needs it. Other
    /// installations' histories stay.
    pub fn forget_folder(&self, dir: &Path) {
        let mut state = self.lock();
        state.entries.retain(|path, _| !path.starts_with(dir));
        state.total = state.entries.values().map(|e| e.bytes).sum();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The calls in flight of each part, shared by a site's requests (see [`crate::data::flight`]).
pub struct InFlight {
    info: Calls<(Sourced<UserInfo>, Option<String>)>,
    stats: Calls<(Sourced<UserStats>, Option<String>)>,
    pricing: Calls<(Sourced<Pricing>, Option<String>)>,
    history: Calls<(Sourced<History>, Option<String>)>,
}

impl InFlight {
    /// Parts whose call failed rest `retry_after` (`--api-retry-after`).
    pub fn new(retry_after: Duration) -> Self {
        InFlight {
            info: Calls::new(retry_after),
            stats: Calls::new(retry_after),
            pricing: Calls::new(retry_after),
            history: Calls::new(retry_after),
        }
    }
}

/// Everything a gathering needs to know; owned, so a call can go on in the background
/// after the request that started it has answered.
#[derive(Clone)]
pub struct Gatherer {
    pub api: ApiClient,
    pub memo: Arc<HistoryMemo>,
    /// The kept histories this process has open.
    pub kept: Arc<KeptHistories>,
    pub last_good: Arc<LastGood>,
    pub in_flight: Arc<InFlight>,
    pub install: Installation,
    pub config: Arc<LicenseConfig>,
    pub now: i64,
    /// Skip the caches and fetch everything afresh (Refresh Data); fresh answers still
    /// replace the cache files, so nothing is lost if a call fails.
    pub force: bool,
    /// How long a user/info or user/stats answer is reused, in seconds (0: never).
    pub account_ttl: i64,
    /// Set when this process answers one request (CGI) for a view of this page: only
    /// the page's entries are read from a cache file, through its index, as nothing
    /// read would stay in memory for a next request.
    pub only_page: Option<usize>,
    /// How long a view that has older data to show waits for the license server
    /// (`--api-patience`); Refresh Data waits for the call's own limit.
    pub patience: Duration,
}

/// A part on its way: ready, resting after a failure, or a call to wait for.
enum Pending<T> {
    Ready(Sourced<T>),
    Resting(ApiError),
    Called(Ticket<(Sourced<T>, Option<String>)>),
}

impl Gatherer {
    /// Gathers the needed parts: fresh caches first, then the API calls in parallel; a
    /// failed, timed-out or resting call falls back to the last good copy of its part.
    /// A part with such a copy waits only `patience` for its call.
    pub fn gather(&self, needs: Needs) -> Gathered {
        let history_path = self.history_path();
        // Each part's older data, any age: shown when its call fails, and what makes
        // a short patience possible.
        let pricing_old = needs.pricing.then(|| self.cached_pricing()).flatten();
        let history_today = needs
            .history
            .then(|| self.cached_history(&history_path))
            .flatten();
        let info_old = needs
            .info
            .then(|| self.account_copy::<UserInfo>(Endpoint::UserInfo, None))
            .flatten();
        let stats_old = needs
            .stats
            .then(|| self.account_copy::<UserStats>(Endpoint::UserStats, None))
            .flatten();
        // user/info and user/stats answered within the last `account_ttl` seconds are
        // reused, so a view costs no call at all; the footer then says "Cached". Only
        // today's history file counts as fresh.
        let info_ready = self.fresh(&info_old, self.account_ttl);
        let stats_ready = self.fresh(&stats_old, self.account_ttl);
        let pricing_ready = self.fresh(&pricing_old, cache::PRICING_TTL);
        let history_ready = self.fresh(&history_today, cache::TRANSACTIONS_TTL);
        let history_old = match history_today {
            Some(today) => Some(today),
            None if needs.history => self.older_history(),
            None => None,
        };

        // Every missing call starts before any is waited for: they run in parallel.
        let info = needs.info.then(|| {
            self.pending(&self.in_flight.info, info_ready, info_old.is_some(), |g| {
                g.live(Endpoint::UserInfo)
            })
        });
        let stats = needs.stats.then(|| {
            self.pending(
                &self.in_flight.stats,
                stats_ready,
                stats_old.is_some(),
                |g| g.live(Endpoint::UserStats),
            )
        });
        let pricing = needs.pricing.then(|| {
            self.pending(
                &self.in_flight.pricing,
                pricing_ready,
                pricing_old.is_some(),
                |g| g.fetch_pricing(),
            )
        });
        let history = needs.history.then(|| {
            let path = history_path.clone();
            self.pending(
                &self.in_flight.history,
                history_ready,
                history_old.is_some(),
                move |g| g.fetch_history(&path),
            )
        });

        let started = Instant::now();
        let mut gathered = Gathered::default();
        let g = &mut gathered;
        g.info = info.map(|p| self.settle(g, Endpoint::UserInfo, p, info_old, started));
        g.stats = stats.map(|p| self.settle(g, Endpoint::UserStats, p, stats_old, started));
        g.pricing = pricing.map(|p| self.settle(g, Endpoint::Pricing, p, pricing_old, started));
        g.history = history.map(|p| self.settle(g, Endpoint::History, p, history_old, started));
        if needs.history {
            // The cause (a path, SQLite's words) goes to the log; the page says what it
            // means in its own language.
            match self.keep() {
                Ok(kept) => {
                    if kept.len >= kept_history::MAX_KEPT {
                        gathered.kept_trouble = Some(KeptTrouble::Full);
                    }
                    gathered.kept = Some(kept);
                }
                Err(error) => {
                    eprintln!("tokenusage: {error}");
                    gathered.kept_trouble = Some(KeptTrouble::Unavailable);
                }
            }
        }
        gathered
    }

    /// The kept history, having read today's cache file if it changed since (another
    /// process or the PHP page wrote it) and, at first use, every cache file there is.
    fn keep(&self) -> Result<Kept, KeptError> {
        let path = self.install.kept_history();
        let zone = self.config.timezone;
        let history = self.kept.get(&path, zone)?;
        kept_history::lock(&history).catch_up(
            &self.install.transaction_cache_dir(),
            &self.config.history_files,
            Some(&self.history_path()),
        )?;
        self.kept.kept(history, &path)
    }

    /// `older` when it is recent enough to show without a call (never for Refresh Data).
    fn fresh<T: Clone>(&self, older: &Option<Sourced<T>>, ttl: i64) -> Option<Sourced<T>> {
        older
            .as_ref()
            .filter(|o| !self.force && cache::is_fresh(o.fetched_at, self.now, ttl))
            .cloned()
    }

    /// A part ready without a call, resting (when it has older data to show), or its call
    /// started or joined.
    fn pending<T: Clone + Send + 'static>(
        &self,
        calls: &Calls<(Sourced<T>, Option<String>)>,
        ready: Option<Sourced<T>>,
        has_older: bool,
        call: impl FnOnce(&Gatherer) -> Fetched<T> + Send + 'static,
    ) -> Pending<T> {
        if let Some(ready) = ready {
            return Pending::Ready(ready);
        }
        let key = &self.install.root;
        if let Some(until) = (!self.force && has_older)
            .then(|| calls.resting_until(key, self.now))
            .flatten()
        {
            let cause = format!(
                "an earlier call failed or timed out; no new call for {} s (--api-retry-after)",
                until - self.now
            );
            return Pending::Resting(ApiError::Resting {
                until,
                cause: cause.into(),
            });
        }
        let gatherer = self.clone();
        Pending::Called(calls.start(key, move || call(&gatherer)))
    }

    /// A part's data: ready, fetched, or on failure its older copy (recorded as stale),
    /// else the error. A call with an older copy to show is waited for `patience` from
    /// `started`, any other for the call's own limit and a little more.
    fn settle<T: Clone>(
        &self,
        gathered: &mut Gathered,
        part: Endpoint,
        pending: Pending<T>,
        older: Option<Sourced<T>>,
        started: Instant,
    ) -> Result<Sourced<T>, ApiError> {
        let fetched = match pending {
            Pending::Ready(ready) => return Ok(ready),
            Pending::Resting(error) => Err(error),
            Pending::Called(ticket) => {
                // The patience runs from the call's start: a view that joins a call
                // already past it shows the older data at once, rather than every view
                // waiting the patience again while the call hangs.
                let patient = older.is_some() && !self.force;
                let (wait, deadline) = if patient {
                    (self.patience, ticket.started() + self.patience)
                } else {
                    (self.lock_wait(), started + self.lock_wait())
                };
                ticket.wait_until(deadline).unwrap_or_else(|| {
                    Err(ApiError::TimedOut(format!(
                        "no answer within {} s{}; the call goes on and its answer is kept for the next view",
                        wait.as_secs_f32(),
                        if patient { " (--api-patience)" } else { "" }
                    ).into()))
                })
            }
        };
        match fetched {
            Ok((value, warning)) => {
                gathered.warnings.extend(warning);
                Ok(value)
            }
            Err(error) => match older {
                Some(old) => {
                    gathered.stale.push(Stale {
                        part,
                        error,
                        fetched_at: old.fetched_at,
                    });
                    Ok(old)
                }
                None => Err(error),
            },
        }
    }

    /// Today's transaction cache file, named by the admin's local date like the PHP page.
    pub fn history_path(&self) -> PathBuf {
        let dir = self.install.transaction_cache_dir();
        self.config.history_files.for_date(&dir, &self.today())
    }

    fn today(&self) -> String {
        local_date(self.now, self.config.timezone)
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The pricing cache, fresh or not.
    fn cached_pricing(&self) -> Option<Sourced<Pricing>> {
        let cached = cache::read_pricing(&self.install.pricing_cache())?;
        Some(Sourced {
            value: serde_json::from_value(cached.value).ok()?,
            fetched_at: cached.timestamp,
            from_cache: true,
        })
    }

    fn fresh_pricing(&self) -> Option<Sourced<Pricing>> {
        self.cached_pricing()
            .filter(|p| cache::is_fresh(p.fetched_at, self.now, cache::PRICING_TTL))
    }

    /// A transaction cache file, fresh or not.
    fn cached_history(&self, path: &Path) -> Option<Sourced<History>> {
        let cached = match self.only_page {
            Some(page) => {
                let rows = |count| {
                    let shown = paginate(count, page, PER_PAGE);
                    shown.start..shown.end
                };
                let page = cache::read_transaction_page(path, rows)?;
                Cached {
                    timestamp: page.timestamp,
                    value: Arc::new(page.value),
                }
            }
            None => self.memo.read(path)?,
        };
        Some(Sourced {
            value: cached.value,
            fetched_at: cached.timestamp,
            from_cache: true,
        })
    }

    fn fresh_history(&self, path: &Path) -> Option<Sourced<History>> {
        self.cached_history(path)
            .filter(|h| cache::is_fresh(h.fetched_at, self.now, cache::TRANSACTIONS_TTL))
    }

    /// The newest earlier day's file: today's older data when today has none.
    fn older_history(&self) -> Option<Sourced<History>> {
        let dir = self.install.transaction_cache_dir();
        let older = self
            .config
            .history_files
            .newest_before(&dir, &self.today())?;
        self.cached_history(&older)
    }

    /// The last good user/info or user/stats answer: any age when the live call failed,
    /// at most `max_age` seconds old when reused instead of calling.
    fn account_copy<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        max_age: Option<i64>,
    ) -> Option<Sourced<T>> {
        let cached = self.last_good.recall(
            &self.install.last_good_file(),
            &self.config.credentials_id,
            endpoint,
        )?;
        let age = self.now - cached.timestamp;
        if max_age.is_some_and(|max| !(0..max).contains(&age)) {
            return None;
        }
        Some(Sourced {
            value: serde_json::from_value(cached.value).ok()?,
            fetched_at: cached.timestamp,
            from_cache: true,
        })
    }

    /// A live user/info or user/stats call, remembered as the last good answer.
    fn live<T: DeserializeOwned>(&self, endpoint: Endpoint) -> Fetched<T> {
        // With answers reused, one request calls when the reuse runs out and the others
        // wait for its answer instead of all calling at once.
        let _lock = (self.account_ttl > 0 && !self.force)
            .then(|| FetchLock::acquire(&self.install.account_lock(endpoint), self.lock_wait()));
        if let Some(recent) = (self.account_ttl > 0 && !self.force)
            .then(|| self.account_copy(endpoint, Some(self.account_ttl)))
            .flatten()
        {
            return Ok((recent, None));
        }
        let data = self.api.call(&self.config.credentials, endpoint)?;
        let value: T = decode(data.clone())?;
        self.last_good.remember(
            &self.install.last_good_file(),
            &self.config.credentials_id,
            endpoint,
            self.now,
            &data,
        );
        let sourced = Sourced {
            value,
            fetched_at: self.now,
            from_cache: false,
        };
        Ok((sourced, None))
    }

    /// How long to wait for another request's fetch: a little longer than a call may take.
    fn lock_wait(&self) -> Duration {
        self.api.total_timeout() + Duration::from_secs(5)
    }

    fn fetch_pricing(&self) -> Fetched<Pricing> {
        let _lock = FetchLock::acquire(&self.install.pricing_lock(), self.lock_wait());
        // Another request may have fetched while we waited for the lock.
        if let Some(fresh) = (!self.force).then(|| self.fresh_pricing()).flatten() {
            return Ok((fresh, None));
        }
        let data = self.api.call(&self.config.credentials, Endpoint::Pricing)?;
        let pricing: Pricing = decode(data.clone())?;
        let path = self.install.pricing_cache();
        let warning = cache::write_pricing(&path, self.now, &data)
            .err()
            .map(|e| cache_warning(&path, &e));
        let sourced = Sourced {
            value: pricing,
            fetched_at: self.now,
            from_cache: false,
        };
        Ok((sourced, warning))
    }

    fn fetch_history(&self, path: &Path) -> Fetched<History> {
        let _lock = FetchLock::acquire(&self.install.history_lock(), self.lock_wait());
        if let Some(fresh) = (!self.force).then(|| self.fresh_history(path)).flatten() {
            return Ok((fresh, None));
        }
        let history = Arc::new(self.api.call_history(&self.config.credentials)?);
        let domain = &self.config.credentials.domain;
        let raw = history.to_json_array();
        let warning = match cache::write_transactions_raw(path, self.now, domain, &raw) {
            Ok(()) => {
                self.memo.remember(path, self.now, &history);
                None
            }
            Err(e) => Some(cache_warning(path, &e)),
        };
        // Kept at once, with the file it was written to so that it is not read again.
        // Logged here; the view's own `keep` tells the page.
        let written = FileStamp::read(path).filter(|_| warning.is_none());
        if let Err(error) = self
            .kept
            .get(&self.install.kept_history(), self.config.timezone)
            .and_then(|kept| {
                kept_history::lock(&kept).absorb(
                    &history,
                    self.now,
                    written.map(|stamp| (path, stamp)),
                )
            })
        {
            eprintln!("tokenusage: {error}");
        }
        let sourced = Sourced {
            value: history,
            fetched_at: self.now,
            from_cache: false,
        };
        Ok((sourced, warning))
    }
}

/// A part the caller asked for; a part not gathered reads as a format error rather than
/// a panic, though `gather` always fills what `Needs` names.
pub fn required<T>(part: Option<Result<T, ApiError>>) -> Result<T, ApiError> {
    part.unwrap_or_else(|| Err(ApiError::Format("not gathered".into())))
}

fn decode<T: DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    serde_json::from_value(data).map_err(|e| ApiError::Format(e.to_string().into()))
}

/// A cache that could not be written is a warning naming the folder, never an error page.
fn cache_warning(path: &Path, error: &std::io::Error) -> String {
    let folder = path.parent().unwrap_or(path);
    format!("Could not write the cache in {}: {error}", folder.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_file(dir: &Path, name: &str, entries: usize) -> PathBuf {
        let path = dir.join(name);
        let transactions: Vec<Value> = (0..entries)
            .map(|i| {
                serde_json::json!({"id": i, "created_at": "2026-11-20 10:04:11",
                    "transaction_type": "usage", "service_type": "image_search via openai",
                    "amount": "-0.0125", "tokens_used": 1834, "images_processed": 1,
                    "description": "AI image selection via openai (gpt-4o-mini) for gallery 5512"})
            })
            .collect();
        let raw = serde_json::to_string(&transactions).unwrap();
        cache::write_transactions_raw(&path, 1, "example.com", &raw).unwrap();
        path
    }

    #[test]
    fn the_memo_stays_within_its_budget_and_keeps_the_recently_used() {
        let tmp = tempfile::Builder::new()
            .prefix("tokenusage-memo-")
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let files: Vec<PathBuf> = (0..5)
            .map(|i| history_file(dir, &format!("h{i}.json"), 1000))
            .collect();
        let one = {
            let memo = HistoryMemo::default();
            memo.read(&files[0]).unwrap();
            memo.held_bytes()
        };
        let memo = HistoryMemo::with_budget(one * 2 + one / 2);
        for file in &files {
            assert_eq!(memo.read(file).unwrap().value.len(), 1000);
            // The first file is read often, so it stays.
            memo.read(&files[0]).unwrap();
            assert!(memo.held_bytes() <= one * 2 + one / 2);
        }
        let state = memo.lock();
        assert_eq!(state.entries.len(), 2);
        assert!(state.entries.contains_key(&files[0]));
        assert!(state.entries.contains_key(&files[4]));
        drop(state);
    }

    #[test]
    fn clear_cache_forgets_only_its_own_folders_histories() {
        let tmp = tempfile::Builder::new()
            .prefix("tokenusage-memo-forget-")
            .tempdir()
            .unwrap();
        let root = tmp.path();
        let (one, two) = (root.join("one"), root.join("two"));
        let kept = history_file(&two, "h.json", 10);
        let memo = HistoryMemo::default();
        memo.read(&history_file(&one, "h.json", 10)).unwrap();
        memo.read(&kept).unwrap();
        let both = memo.held_bytes();
        memo.forget_folder(&one);
        let state = memo.lock();
        assert_eq!(state.entries.keys().collect::<Vec<_>>(), [&kept]);
        assert_eq!(state.total * 2, both);
        drop(state);
    }

    #[test]
    fn a_changed_file_is_read_again() {
        let tmp = tempfile::Builder::new()
            .prefix("tokenusage-memo-change-")
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let path = history_file(dir, "h.json", 10);
        let memo = HistoryMemo::default();
        assert_eq!(memo.read(&path).unwrap().value.len(), 10);
        history_file(dir, "h.json", 12);
        assert_eq!(memo.read(&path).unwrap().value.len(), 12);
    }
}
