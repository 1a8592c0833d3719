//! `?debug=1`: the config (the key cut to 8 characters), the cache files, the raw
//! answers of user/info and user/stats, and the first five transactions.

use super::error::RequestError;
use super::error::debug_message;
use super::visit::Visit;
use std::path::Path;

use serde::Serialize;

use crate::data::cache;
use crate::data::fetch::{Needs, required};
use crate::data::license_api::{ApiError, Endpoint};
use crate::transport::response::Response;
use crate::view::dashboard::{self, TransactionView};

impl Visit<'_> {
    pub(super) fn debug(&self) -> Result<Response, RequestError> {
        let config = &self.config;
        let credentials = &config.credentials;
        let gatherer = self.gatherer(false);
        let history_path = gatherer.history_path();
        let (answers, gathered) = std::thread::scope(|scope| {
            let calls: Vec<_> = [
                (Endpoint::UserInfo, "token_usage_debug_user_info"),
                (Endpoint::UserStats, "token_usage_debug_user_stats"),
            ]
            .into_iter()
            .map(|(endpoint, label)| {
                (
                    label,
                    scope.spawn(move || self.site.api.call_raw(credentials, endpoint)),
                )
            })
            .collect();
            let gathered = gatherer.gather(Needs::HISTORY);
            let answers: Vec<AnswerView> = calls
                .into_iter()
                .map(|(label, call)| {
                    let result = call
                        .join()
                        .unwrap_or_else(|_| Err(ApiError::Connect("panicked".into())));
                    AnswerView::new(label, result)
                })
                .collect();
            (answers, gathered)
        });
        let pricing_path = self.install.pricing_cache();
        let pricing_ts = cache::read_pricing(&pricing_path).map(|c| c.timestamp);
        let history_ts = self.site.memo.read(&history_path).map(|c| c.timestamp);
        let cache_file = |path: &Path, ttl, ts| {
            let (age, state) = describe(path, self.now, ttl, ts);
            CacheFileView {
                path: path.display().to_string(),
                age: age.map_or_else(
                    || "-".into(),
                    |seconds| dashboard::format_age(seconds, &self.strings, self.locale()),
                ),
                state: self.strings.get(state).to_string(),
            }
        };
        let (transactions, transactions_json, history_error) = match required(gathered.history) {
            Ok(history) => {
                let formats = dashboard::Formats::new(self.now, config.timezone, self.locale());
                let first = history.value.decode(0..5);
                let json = serde_json::to_string_pretty(&first).unwrap_or_default();
                let rows = first
                    .iter()
                    .map(|t| dashboard::transaction_view(t, &formats))
                    .collect();
                (rows, crate::view::branding::brand(&json).into_owned(), None)
            }
            Err(error) => (
                Vec::new(),
                String::new(),
                Some(error.localized(&self.strings)),
            ),
        };
        let view = DebugView {
            api_url: credentials.api_url.clone(),
            license_key: config.masked_key(),
            domain: credentials.domain.clone(),
            email: credentials.email.clone(),
            cache_files: vec![
                cache_file(&pricing_path, cache::PRICING_TTL, pricing_ts),
                cache_file(&history_path, cache::TRANSACTIONS_TTL, history_ts),
            ],
            answers,
            transactions,
            transactions_json,
            history_error,
        };
        self.render("debug.html", ("debug", &view))
    }
}

#[derive(Debug, Serialize)]
struct DebugView {
    api_url: String,
    license_key: String,
    domain: String,
    email: String,
    cache_files: Vec<CacheFileView>,
    answers: Vec<AnswerView>,
    transactions: Vec<TransactionView>,
    transactions_json: String,
    history_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CacheFileView {
    path: String,
    age: String,
    state: String,
}

/// A raw answer as the debug page shows it: pretty JSON when it is JSON.
#[derive(Debug, Serialize)]
struct AnswerView {
    label: &'static str,
    body: String,
    error: Option<String>,
}

/// The most of a raw answer the debug page shows.
const DEBUG_BODY_CHARS: usize = 64 * 1024;

impl AnswerView {
    fn new(
        label: &'static str,
        result: Result<crate::data::license_api::client::RawAnswer, ApiError>,
    ) -> Self {
        match result {
            Ok(raw) => {
                let error = crate::data::license_api::client::decode(&raw)
                    .err()
                    .map(|e| debug_message(&e));
                let body = serde_json::from_str::<serde_json::Value>(&raw.body)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or(raw.body);
                AnswerView {
                    label,
                    body: dashboard::truncate_chars(&body, DEBUG_BODY_CHARS),
                    error,
                }
            }
            Err(e) => AnswerView {
                label,
                body: String::new(),
                error: Some(debug_message(&e)),
            },
        }
    }
}

/// Age and state (a string key) of a cache file, for the debug page.
fn describe(
    path: &Path,
    now: i64,
    ttl: i64,
    timestamp: Option<i64>,
) -> (Option<i64>, &'static str) {
    match (std::fs::metadata(path), timestamp) {
        (Err(_), _) => (None, "token_usage_debug_missing"),
        (Ok(_), None) => (None, "token_usage_debug_unreadable"),
        (Ok(_), Some(ts)) if cache::is_fresh(ts, now, ttl) => {
            (Some(now - ts), "token_usage_debug_fresh")
        }
        (Ok(_), Some(ts)) => (Some(now - ts), "token_usage_debug_stale"),
    }
}
