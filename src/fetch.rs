//! Gathers what a page needs: each cache first, then the missing API calls in parallel,
//! so a page waits for the slowest call rather than their sum. Fresh answers are written
//! back to the PHP page's cache files.
//!
//! Performs file and HTTP I/O; the parsed history is kept in memory while its cache file
//! is unchanged (same size and modification time), so a page view does not re-parse
//! megabytes of JSON.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::{self, Cached};
use crate::config::LicenseConfig;
use crate::dashboard::{Sourced, local_date};
use crate::install::Installation;
use crate::license_api::wire::{Pricing, Transaction, UserInfo, UserStats, transactions_array};
use crate::license_api::{ApiClient, ApiError, Endpoint};

/// The parsed history shared between requests.
pub type History = Arc<Vec<Transaction>>;

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
    pub info: Option<Result<UserInfo, ApiError>>,
    pub stats: Option<Result<UserStats, ApiError>>,
    pub pricing: Option<Result<Sourced<Pricing>, ApiError>>,
    pub history: Option<Result<Sourced<History>, ApiError>>,
    /// Problems that did not stop the page (a cache that could not be written).
    pub warnings: Vec<String>,
}

/// Identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = fs::metadata(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Parsed transaction cache files by path, valid while the file's stamp is unchanged.
#[derive(Debug, Default)]
pub struct HistoryMemo {
    entries: Mutex<HashMap<PathBuf, (FileStamp, i64, History)>>,
}

impl HistoryMemo {
    /// The cache file's transactions and timestamp, parsed at most once per version.
    pub fn read(&self, path: &Path) -> Option<Cached<History>> {
        let current = stamp(path)?;
        if let Some((known, timestamp, history)) = self.lock().get(path) {
            if *known == current {
                return Some(Cached {
                    timestamp: *timestamp,
                    value: history.clone(),
                });
            }
        }
        let parsed = cache::read_transactions(path)?;
        let history = Arc::new(parsed.value);
        // Stat again: the file may have been replaced while we parsed it.
        if stamp(path) == Some(current) {
            self.lock().insert(
                path.to_path_buf(),
                (current, parsed.timestamp, history.clone()),
            );
        }
        Some(Cached {
            timestamp: parsed.timestamp,
            value: history,
        })
    }

    /// Remembers what we just wrote, so the next view does not parse it again.
    fn remember(&self, path: &Path, timestamp: i64, history: &History) {
        if let Some(current) = stamp(path) {
            self.lock()
                .insert(path.to_path_buf(), (current, timestamp, history.clone()));
        }
    }

    /// Forgets everything (after Clear Cache or Refresh Data).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (FileStamp, i64, History)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything a gathering needs to know.
pub struct Gatherer<'a> {
    pub api: &'a ApiClient,
    pub memo: &'a HistoryMemo,
    pub install: &'a Installation,
    pub config: &'a LicenseConfig,
    pub now: i64,
    /// Skip the caches and fetch everything afresh (Refresh Data); fresh answers still
    /// replace the cache files, so nothing is lost if a call fails.
    pub force: bool,
}

impl Gatherer<'_> {
    /// Gathers the needed parts: caches first, then the API calls in parallel.
    pub fn gather(&self, needs: Needs) -> Gathered {
        let use_cache = !self.force;
        let pricing_cached = (needs.pricing && use_cache)
            .then(|| self.cached_pricing())
            .flatten();
        let history_path = self.history_path();
        let history_cached = (needs.history && use_cache)
            .then(|| self.cached_history(&history_path))
            .flatten();

        let mut gathered = Gathered::default();
        std::thread::scope(|scope| {
            let info = needs
                .info
                .then(|| scope.spawn(|| self.call::<UserInfo>(Endpoint::UserInfo)));
            let stats = needs
                .stats
                .then(|| scope.spawn(|| self.call::<UserStats>(Endpoint::UserStats)));
            let pricing = (needs.pricing && pricing_cached.is_none())
                .then(|| scope.spawn(|| self.fetch_pricing()));
            let history = (needs.history && history_cached.is_none())
                .then(|| scope.spawn(|| self.fetch_history(&history_path)));

            gathered.info = info.map(join);
            gathered.stats = stats.map(join);
            gathered.pricing = match (pricing_cached, pricing.map(join)) {
                (Some(cached), _) => Some(Ok(cached)),
                (None, Some(fetched)) => Some(fetched.map(|(value, warning)| {
                    gathered.warnings.extend(warning);
                    value
                })),
                (None, None) => None,
            };
            gathered.history = match (history_cached, history.map(join)) {
                (Some(cached), _) => Some(Ok(cached)),
                (None, Some(fetched)) => Some(fetched.map(|(value, warning)| {
                    gathered.warnings.extend(warning);
                    value
                })),
                (None, None) => None,
            };
        });
        gathered
    }

    /// Today's transaction cache file, named by the admin's local date like the PHP page.
    pub fn history_path(&self) -> PathBuf {
        let date = local_date(self.now, self.config.timezone)
            .format("%Y-%m-%d")
            .to_string();
        cache::transaction_cache_file(
            &self.install.transaction_cache_dir(),
            &self.config.credentials.domain,
            &date,
        )
    }

    fn cached_pricing(&self) -> Option<Sourced<Pricing>> {
        let cached = cache::read_pricing(&self.install.pricing_cache())?;
        if !cache::is_fresh(cached.timestamp, self.now, cache::PRICING_TTL) {
            return None;
        }
        Some(Sourced {
            value: serde_json::from_value(cached.value).ok()?,
            fetched_at: cached.timestamp,
            from_cache: true,
        })
    }

    fn cached_history(&self, path: &Path) -> Option<Sourced<History>> {
        let cached = self.memo.read(path)?;
        cache::is_fresh(cached.timestamp, self.now, cache::TRANSACTIONS_TTL).then_some(Sourced {
            value: cached.value,
            fetched_at: cached.timestamp,
            from_cache: true,
        })
    }

    fn call<T: DeserializeOwned>(&self, endpoint: Endpoint) -> Result<T, ApiError> {
        let data = self.api.call(&self.config.credentials, endpoint)?;
        decode(data)
    }

    fn fetch_pricing(&self) -> Result<(Sourced<Pricing>, Option<String>), ApiError> {
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

    fn fetch_history(&self, path: &Path) -> Result<(Sourced<History>, Option<String>), ApiError> {
        let data = self.api.call(&self.config.credentials, Endpoint::History)?;
        let raw = transactions_array(&data)
            .ok_or_else(|| ApiError::Format("no transactions array".into()))?;
        let history: Vec<Transaction> = decode(Value::Array(raw.clone()))?;
        let history = Arc::new(history);
        let warning =
            match cache::write_transactions(path, self.now, &self.config.credentials.domain, raw) {
                Ok(()) => {
                    self.memo.remember(path, self.now, &history);
                    None
                }
                Err(e) => Some(cache_warning(path, &e)),
            };
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
    serde_json::from_value(data).map_err(|e| ApiError::Format(e.to_string()))
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T, ApiError>>) -> Result<T, ApiError> {
    handle
        .join()
        .unwrap_or_else(|_| Err(ApiError::Connect("the call's thread panicked".into())))
}

/// A cache that could not be written is a warning naming the folder, never an error page.
fn cache_warning(path: &Path, error: &std::io::Error) -> String {
    let folder = path.parent().unwrap_or(path);
    format!("Could not write the cache in {}: {error}", folder.display())
}
