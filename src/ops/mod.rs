//! The commands admins script: `check-config` (is this installation set up?), `check` (a
//! monitoring plugin for Icinga, Nagios and the like), `metrics` (Prometheus text for
//! node_exporter's textfile collector) and `report` (the insight cards as text or JSON).
//!
//! Each command reads what the page reads, through the same client and the same cache
//! files ([`read_balance`] gathers like a dashboard view, so a check between two views
//! reuses their answers and leaves its own for them). The pure parts (ranges, statuses,
//! the text printed) are apart from the I/O and tested beside it.

pub mod check;
pub mod check_config;
pub mod metrics;
pub mod notify;
pub mod range;
pub mod report;

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::data::config::{ConfigError, ConfigStore, LicenseConfig};
use crate::data::fetch::{Gatherer, HistoryMemo, InFlight, Needs, required};
use chrono_tz::Tz;

use crate::data::cache::local_date;
use crate::data::install::Installation;
use crate::data::kept_history::KeptHistories;
use crate::data::last_good::LastGood;
use crate::data::license_api::ApiClient;
use crate::data::license_api::client::MAX_BODY_BYTES;
use crate::data::license_api::{ApiError, Endpoint};
use crate::view::insights::{self, Facts, Insights};

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
    /// What the kept history says (the page's insight cards), or why it cannot tell.
    pub insights: Result<Insights, String>,
    /// Usage spend of the last 24 h per branded service, largest first.
    pub spend_24h: Vec<(String, f64)>,
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
    /// The zone of a config that names none (`--timezone`).
    pub fallback_zone: Tz,
}

impl Probe {
    /// A probe whose API calls take at most `timeout` (connect included).
    pub fn new(timeout: Duration, account_ttl: Duration, now: i64, fallback_zone: Tz) -> Probe {
        Probe {
            api: ApiClient::new(timeout, timeout, MAX_BODY_BYTES),
            account_ttl,
            now,
            fallback_zone,
        }
    }
}

/// An installation's config, read as the page reads it (`fallback_zone`: `--timezone`).
pub fn load_config(root: &Path, fallback_zone: Tz) -> Result<Arc<LicenseConfig>, ConfigError> {
    ConfigStore::with_zone(fallback_zone).load(&Installation::new(root))
}

/// The balance of the installation at `root`: reused, fetched, or the last good answer
/// when the call fails; the error when there is none at all; and the insights of its kept
/// history, whose window is fetched when the page would fetch it. Reads and writes the
/// page's cache files and the kept history.
pub fn read_balance(
    root: &Path,
    config: Arc<LicenseConfig>,
    probe: &Probe,
) -> Result<Reading, String> {
    let gatherer = Gatherer {
        api: probe.api.clone(),
        memo: Arc::new(HistoryMemo::with_budget(0)),
        kept: Arc::new(KeptHistories::default()),
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
        history: true,
    };
    let zone = gatherer.config.timezone;
    let gathered = gatherer.gather(needs);
    let stats = required(gathered.stats).map_err(|e| error_text(&e))?;
    let failure = (stats.from_cache)
        .then(|| gathered.stale.iter().find(|s| s.part != Endpoint::History))
        .flatten()
        .map(|s| error_text(&s.error));
    let balance = stats.value.balance;
    let now = probe.now;
    let (insights, spend_24h) = match &gathered.kept {
        Some(kept) => {
            let today = local_date(now, zone);
            let read = kept
                .summary(now, insights::first_day_needed(today))
                .map(|summary| insights::insights(&Facts::of(&summary, now, zone, balance)));
            let spend_24h = kept
                .history()
                .spend_by_service_since(now - 86_400)
                .unwrap_or_default();
            (
                read.map_err(|e| e.to_string()),
                insights::by_brand(spend_24h),
            )
        }
        None => (Err(gathered.warnings.join("; ")), Vec::new()),
    };
    Ok(Reading {
        balance,
        fetched_at: stats.fetched_at,
        from_cache: stats.from_cache,
        failure,
        insights,
        spend_24h,
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
            insights: Err("none".into()),
            spend_24h: Vec::new(),
        };
        assert_eq!(reading.age(160), 60);
        assert_eq!(reading.age(90), 0);
    }
}
