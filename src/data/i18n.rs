//! Every visible string, by the seed's translation keys (`token_usage_title`, ...).
//!
//! English is built in. An installation whose config names an admin language may ship
//! `ct/dat/lang/tokenusage.<lang>.json` (a flat object of key -> text) to translate any
//! subset; missing keys fall back to English. Loading that file is the only I/O here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

/// The English strings. The first block is the seed's list; the rest are keys we needed
/// for text the seed shows without naming a key.
pub const ENGLISH: &[(&str, &str)] = &[
    ("token_usage_title", "Token & Credit Usage Dashboard"),
    ("token_usage_breadcrumb", "Token Usage"),
    ("token_usage_overview", "Overview"),
    ("token_usage_refresh", "Refresh Data"),
    ("token_usage_download", "Download History"),
    ("token_usage_update_pricing", "Update Pricing"),
    ("token_usage_clear_cache", "Clear Cache"),
    ("token_usage_debug", "Debug API"),
    ("token_usage_back", "Back to Reports"),
    ("token_usage_help", "Help"),
    ("token_usage_account_overview", "Account Overview"),
    ("token_usage_email", "Email"),
    ("token_usage_license_type", "License Type"),
    ("token_usage_domain", "Domain"),
    ("token_usage_member_since", "Member Since"),
    (
        "token_usage_balance_stats",
        "Current Balance & Usage Statistics",
    ),
    ("token_usage_current_balance", "Current Balance"),
    ("token_usage_tokens_used", "Tokens Used"),
    ("token_usage_credits_used", "Credits Used"),
    ("token_usage_api_calls", "API Calls Made"),
    ("token_usage_images_processed", "Images Processed"),
    ("token_usage_last_updated", "Last Updated"),
    ("token_usage_pricing", "Current API Pricing (Live)"),
    ("token_usage_image_processing", "Image Processing"),
    ("token_usage_input_tokens", "Input Tokens"),
    ("token_usage_completion_tokens", "Completion Tokens"),
    ("token_usage_cached_tokens", "Cached Tokens"),
    ("token_usage_estimated", "Estimated Usage Remaining"),
    ("token_usage_image_searches", "Image Searches"),
    ("token_usage_low_balance", "LOW BALANCE WARNING"),
    (
        "token_usage_low_balance_msg",
        "Your credit balance is below $1.00. Consider purchasing more credits to continue using AI services.",
    ),
    ("token_usage_buy_credits", "Click here to purchase credits"),
    (
        "token_usage_transaction_history",
        "Complete Transaction History",
    ),
    ("token_usage_showing", "Showing"),
    ("token_usage_of", "of"),
    ("token_usage_transactions", "transactions"),
    ("token_usage_page", "Page"),
    ("token_usage_cache", "Cache"),
    ("token_usage_old", "old"),
    ("token_usage_previous", "Previous"),
    ("token_usage_next", "Next"),
    ("token_usage_date", "Date"),
    ("token_usage_type", "Type"),
    ("token_usage_service", "Service"),
    ("token_usage_amount", "Amount"),
    ("token_usage_tokens", "Tokens"),
    ("token_usage_images", "Images"),
    ("token_usage_description", "Description"),
    (
        "token_usage_no_transactions",
        "No transaction history available",
    ),
    ("token_usage_unable_load", "Unable to Load Account Data"),
    (
        "token_usage_check_config",
        "Please check your license configuration and try again.",
    ),
    ("token_usage_retry", "Retry Loading Data"),
    (
        "token_usage_no_transactions_download",
        "No transaction history available to download.",
    ),
    (
        "token_usage_download_failed",
        "Failed to fetch data for download. Please try again.",
    ),
    ("token_usage_data_refreshed", "Data refreshed successfully"),
    (
        "token_usage_pricing_cleared",
        "Pricing cache cleared. Latest prices will be fetched.",
    ),
    (
        "token_usage_cache_cleared",
        "Cleared {count} transaction cache files. Fresh data will be fetched.",
    ),
    // Keys beyond the seed's list.
    ("token_usage_dashboard", "Dashboard"),
    ("token_usage_reports", "Reports"),
    ("token_usage_per_10k_images", "per 10,000 images"),
    ("token_usage_per_1m_tokens", "per 1M tokens"),
    ("token_usage_pricing_updated", "Prices as of"),
    ("token_usage_ai_input_tokens", "AI Input Tokens"),
    ("token_usage_ai_completion_tokens", "AI Completion Tokens"),
    ("token_usage_ai_cached_tokens", "AI Cached Tokens"),
    ("token_usage_not_priced", "n/a"),
    ("token_usage_api", "API"),
    ("token_usage_updated", "Updated"),
    ("token_usage_account_short", "Account"),
    ("token_usage_pricing_short", "Pricing"),
    ("token_usage_transactions_short", "Transactions"),
    ("token_usage_cached", "Cached"),
    ("token_usage_live", "Live"),
    (
        "token_usage_download_demo",
        "Download disabled in demo mode",
    ),
    (
        "token_usage_unknown_action",
        "Unknown action; showing the overview.",
    ),
    (
        "token_usage_confirm",
        "This link did not come from this page, so nothing was changed. Run it?",
    ),
    (
        "token_usage_stale",
        "Showing the last data received, {age} old.",
    ),
    (
        "token_usage_retry_in",
        "The license server is asked again in {age}.",
    ),
    ("token_usage_debug_title", "Debug API"),
    ("token_usage_debug_config", "Configuration"),
    ("token_usage_debug_api_url", "API Base URL"),
    ("token_usage_debug_license_key", "License Key"),
    ("token_usage_debug_cache_files", "Cache Files"),
    ("token_usage_debug_path", "Path"),
    ("token_usage_debug_age", "Age"),
    ("token_usage_debug_state", "State"),
    ("token_usage_debug_user_info", "USER INFO response"),
    ("token_usage_debug_user_stats", "USER STATS response"),
    (
        "token_usage_debug_first_transactions",
        "First 5 transactions",
    ),
    ("token_usage_debug_back", "Back to the dashboard"),
    ("token_usage_error_details", "Details"),
    ("token_usage_demo_mode", "Demo mode"),
    // The insight cards (issue 13); the template fills the `{name}` placeholders.
    ("token_usage_insights", "Spending insights"),
    ("token_usage_time_zone", "Days are in {zone}."),
    ("token_usage_runway", "Runway"),
    (
        "token_usage_runway_days",
        "At this rate your balance lasts about {days} days (until {date}).",
    ),
    (
        "token_usage_runway_a_day",
        "At this rate your balance lasts about a day or less (until {date}).",
    ),
    ("token_usage_runway_used_up", "Your balance is used up."),
    (
        "token_usage_runway_range",
        "{low}–{high} days by the 7- and 30-day averages.",
    ),
    (
        "token_usage_runway_no_spending",
        "No spending in the last 7 days.",
    ),
    ("token_usage_runway_no_history", "Not enough history yet."),
    ("token_usage_per_day_7d", "Spend per day, 7-day average"),
    ("token_usage_per_day_30d", "Spend per day, 30-day average"),
    (
        "token_usage_runway_low_on",
        "The balance falls below {level} on {date}.",
    ),
    (
        "token_usage_runway_low_now",
        "The balance is already below {level}.",
    ),
    (
        "token_usage_own_cost",
        "At your own cost of {cost} per image over the last 30 days: about {count} image jobs.",
    ),
    ("token_usage_daily", "Spend per day, last 30 days"),
    ("token_usage_today_so_far", "today, so far"),
    (
        "token_usage_day_title",
        "{date}: {spend} spent, {count} transactions",
    ),
    (
        "token_usage_day_title_one",
        "{date}: {spend} spent, 1 transaction",
    ),
    ("token_usage_unusual_day", "unusual"),
    ("token_usage_unusual_days", "Unusual days"),
    (
        "token_usage_unusual",
        "Unusual spend on {date}: {spend}, about {times} times the usual {normal}.",
    ),
    (
        "token_usage_unusual_from_nothing",
        "Unusual spend on {date}: {spend}, where a usual day costs nothing.",
    ),
    ("token_usage_unusual_mostly", "Mostly {service}."),
    (
        "token_usage_monthly",
        "Spend and purchases per month, last 12 months",
    ),
    ("token_usage_this_month_so_far", "this month, so far"),
    ("token_usage_month_spend_title", "{month}: {amount} spent"),
    (
        "token_usage_month_purchases_title",
        "{month}: {amount} purchased",
    ),
    ("token_usage_month", "Month"),
    ("token_usage_spend", "Spend"),
    ("token_usage_purchases", "Purchases"),
    ("token_usage_refunds", "Refunds"),
    ("token_usage_show_table", "Show as table"),
    ("token_usage_breakdown", "Spend by service"),
    ("token_usage_spend_7d", "Spend, 7 days"),
    ("token_usage_spend_30d", "Spend, 30 days"),
    ("token_usage_share_30d", "Share, 30 days"),
    ("token_usage_tokens_30d", "Tokens, 30 days"),
    ("token_usage_images_30d", "Images, 30 days"),
    ("token_usage_total", "Total"),
    (
        "token_usage_no_service_spend",
        "No service spent credits in the last 30 days.",
    ),
    ("token_usage_kept_history", "Kept history"),
    (
        "token_usage_totals",
        "Kept history: {count} transactions from {first} to {last}; spent {spent}, purchased {purchased}, refunded {refunded}.",
    ),
    (
        "token_usage_totals_undated",
        "Kept history: {count} transactions; spent {spent}, purchased {purchased}, refunded {refunded}.",
    ),
    ("token_usage_totals_empty", "No history is kept yet."),
];

/// The strings of one language, English where a translation is missing. Cheap to clone:
/// every request of an installation shares them.
#[derive(Debug, Clone)]
pub struct Strings(Arc<Texts>);

#[derive(Debug)]
struct Texts {
    map: BTreeMap<&'static str, String>,
    /// The same map as the templates see it, converted once rather than per render.
    for_templates: tera::Value,
}

impl PartialEq for Strings {
    fn eq(&self, other: &Self) -> bool {
        self.0.map == other.0.map
    }
}

impl Strings {
    /// True when both are the very same loaded strings (not merely equal text).
    pub fn is_same(&self, other: &Strings) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn new(map: BTreeMap<&'static str, String>) -> Self {
        let for_templates = tera::Value::from_serializable(&map);
        Strings(Arc::new(Texts { map, for_templates }))
    }

    /// The built-in English strings, built once and shared.
    pub fn english() -> Self {
        static BUILT: LazyLock<Strings> = LazyLock::new(|| Strings::new(english_map()));
        BUILT.clone()
    }

    /// English overlaid with a translation file's known keys; unknown keys and non-text
    /// values are ignored, a broken file leaves English (and says why).
    pub fn with_translation(json: &str) -> Result<Self, serde_json::Error> {
        let mut strings = english_map();
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(json)?;
        for (key, value) in map {
            if let (Some(slot), serde_json::Value::String(text)) =
                (strings.get_mut(key.as_str()), value)
            {
                *slot = text;
            }
        }
        Ok(Self::new(strings))
    }

    /// Loads `ct/dat/lang/tokenusage.<lang>.json` for a language code, English otherwise.
    pub fn load(dat: &Path, language: Option<&str>) -> Self {
        let Some(lang) = language.filter(|l| is_language_code(l) && *l != "en") else {
            return Self::english();
        };
        let path = dat.join("lang").join(format!("tokenusage.{lang}.json"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::with_translation(&text).unwrap_or_else(|e| {
                eprintln!(
                    "tokenusage: ignoring {}: not a JSON object of strings: {e}",
                    path.display()
                );
                Self::english()
            }),
            Err(_) => Self::english(),
        }
    }

    /// The text of a key (the key itself if unknown, so a typo is visible, not blank).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.map.get(key).map(String::as_str).unwrap_or(key)
    }

    /// The strings as the templates see them (`t`); a clone shares the converted map.
    pub fn template_value(&self) -> tera::Value {
        self.0.for_templates.clone()
    }
}

fn english_map() -> BTreeMap<&'static str, String> {
    ENGLISH.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Language codes like `en`, `de`, `pt_BR`: nothing that could leave the `lang` folder.
fn is_language_code(lang: &str) -> bool {
    (2..=12).contains(&lang.len())
        && lang
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_has_the_seed_title() {
        assert_eq!(
            Strings::english().get("token_usage_title"),
            "Token & Credit Usage Dashboard"
        );
    }

    #[test]
    fn a_translation_overrides_known_keys_only() {
        let strings = Strings::with_translation(
            r#"{"token_usage_refresh": "Daten aktualisieren", "bogus": "x", "token_usage_help": 3}"#,
        )
        .unwrap();
        assert_eq!(strings.get("token_usage_refresh"), "Daten aktualisieren");
        assert_eq!(strings.get("token_usage_help"), "Help");
        assert_eq!(strings.get("bogus"), "bogus");
    }

    #[test]
    fn a_broken_translation_is_an_error() {
        assert!(Strings::with_translation("[1,2]").is_err());
    }

    #[test]
    fn language_codes_cannot_traverse_folders() {
        assert!(is_language_code("pt_BR"));
        assert!(!is_language_code("../../x"));
        assert!(!is_language_code(""));
    }
}
