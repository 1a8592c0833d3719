//! The commands admins script: `check-config` (is this installation set up?), `check` (a
//! monitoring plugin for Icinga, Nagios and the like) and `metrics` (Prometheus text for
//! node_exporter's textfile collector).
//!
//! Each command reads what the page reads, through the same client and the same cache
//! files ([`read_balance`] gathers like a dashboard view, so a check between two views
//! reuses their answers and leaves its own for them). The pure parts (ranges, statuses,
//! the text printed) are apart from the I/O and tested beside it.

pub mod check;
pub mod check_config;
pub mod metrics;
pub mod range;

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::data::config::{ConfigError, ConfigStore, LicenseConfig};
use crate::data::fetch::{Gatherer, HistoryMemo, InFlight, Needs, required};
use crate::data::install::Installation;
use crate::data::last_good::LastGood;
use crate::data::license_api::ApiClient;
use crate::data::license_api::ApiError;
use crate::data::license_api::client::MAX_BODY_BYTES;

/// The balance the dashboard shows as Current Balance, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// `user/stats` `balance`, in dollars.
    pub balance: f64,
    /// Unix seconds when it was fetched from the license server.
    pub fetched_at: i64,
    /// Read from a cache (reused, or the last good answer) rather than fetched now.
    pub from_cache: bool,
    /// Why the live call failed, when a cached balance stands in for it.
    pub failure: Option<String>,
}

impl Reading {
    /// Seconds since it was fetched (never below 0).
    pub fn age(&self, now: i64) -> i64 {
        (now - self.fetched_at).max(0)
    }
}

/// How the commands reach the license API and reuse its answers.
#[derive(Debug, Clone)]
pub struct Probe {
    pub api: ApiClient,
    /// Reuse a user/info or user/stats answer this long (`--account-cache-seconds`).
    pub account_ttl: Duration,
    /// Unix seconds now.
    pub now: i64,
}

impl Probe {
    /// A probe whose API calls take at most `timeout` (connect included).
    pub fn new(timeout: Duration, account_ttl: Duration, now: i64) -> Probe {
        Probe {
            api: ApiClient::new(timeout, timeout, MAX_BODY_BYTES),
            account_ttl,
            now,
        }
    }
}

/// An installation's config, read as the page reads it.
pub fn load_config(root: &Path) -> Result<Arc<LicenseConfig>, ConfigError> {
    ConfigStore::default().load(&Installation::new(root))
}

/// The balance of the installation at `root`: reused, fetched, or the last good answer
/// when the call fails; the error when there is none at all. Reads and writes the page's
/// cache files (`tokenusage_last_good.json`, the account locks).
pub fn read_balance(
    root: &Path,
    config: Arc<LicenseConfig>,
    probe: &Probe,
) -> Result<Reading, String> {
    let gatherer = Gatherer {
        api: probe.api.clone(),
        memo: Arc::new(HistoryMemo::with_budget(0)),
        last_good: Arc::new(LastGood::default()),
        // One gathering per process: nothing rests between calls.
        in_flight: Arc::new(InFlight::new(Duration::ZERO)),
        install: Installation::new(root),
        config,
        now: probe.now,
        force: false,
        account_ttl: probe.account_ttl.as_secs() as i64,
        only_page: None,
        // A check waits for its call's whole limit before falling back on older data.
        patience: probe.api.total_timeout(),
    };
    let needs = Needs {
        info: true,
        stats: true,
        pricing: false,
        history: false,
    };
    let gathered = gatherer.gather(needs);
    let stats = required(gathered.stats).map_err(|e| error_text(&e))?;
    let failure = (stats.from_cache)
        .then(|| gathered.stale.first().map(|s| error_text(&s.error)))
        .flatten();
    Ok(Reading {
        balance: stats.value.balance,
        fetched_at: stats.fetched_at,
        from_cache: stats.from_cache,
        failure,
    })
}

/// An API error with its cause (the license key is already cut out of causes).
pub fn error_text(error: &ApiError) -> String {
    match error.source() {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// Dollars as the page shows them: `$48.73`, `-$1.50`.
pub fn dollars(amount: f64) -> String {
    let sign = if amount < 0.0 { "-" } else { "" };
    format!("{sign}${:.2}", amount.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_have_two_decimals_and_the_sign_before_the_symbol() {
        assert_eq!(dollars(48.7323), "$48.73");
        assert_eq!(dollars(-1.5), "-$1.50");
        assert_eq!(dollars(0.0), "$0.00");
    }

    #[test]
    fn a_reading_s_age_is_never_negative() {
        let reading = Reading {
            balance: 1.0,
            fetched_at: 100,
            from_cache: true,
            failure: None,
        };
        assert_eq!(reading.age(160), 60);
        assert_eq!(reading.age(90), 0);
    }
}
